"""The ML and data code of the Lyra platform, one package per lifecycle stage.

    corpus/      offline demo corpus: music21 scores rendered with a General-MIDI SoundFont
    curation/    any folder of audio -> curated clips + manifest + quarantine
    captioning/  clip tags (tempo, key, ...) -> natural-language captions + text embeddings
    omnicodec/   the neural audio codec: model, training, evaluation, encode/decode
    tokens/      the curated corpus encoded once into memory-mappable token shards
    lyra/        the text-to-music transformer: model, training, generation
    common/      what every stage shares: atomic outputs, audio I/O, reporting, lineage

No module here imports Dagster: every stage is a plain command (`lyra <stage> ...`) that reads
paths, writes its outputs atomically and reports back through dagster-pipes when Dagster
launched it.
"""
