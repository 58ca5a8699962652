/* A failing device, for the I/O-error tests (tests/reliability/faults.py loads it with LD_PRELOAD).

   Every write to a file under $LYRA_EIO_PREFIX counts its bytes; once they pass $LYRA_EIO_AFTER_BYTES
   the device "breaks": that write and every later write or fsync under the prefix fail with EIO, as a
   dying disk or a lost network volume does. Writes elsewhere (the terminal, /tmp, sockets) pass. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *prefix;
static long long budget = -1, written;
static int ready, broken;

static void setup(void) {
    if (ready) return;
    ready = 1;
    prefix = getenv("LYRA_EIO_PREFIX");
    const char *after = getenv("LYRA_EIO_AFTER_BYTES");
    budget = after ? atoll(after) : -1;
}

/* whether this operation on fd (n bytes) fails */
static int fails(int fd, size_t n) {
    setup();
    if (!prefix || budget < 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof path - 1);
    if (k <= 0) return 0;
    path[k] = 0;
    if (strncmp(path, prefix, strlen(prefix)) != 0) return 0;
    if (!broken && written + (long long)n > budget) broken = 1;
    if (broken) { errno = EIO; return 1; }
    written += (long long)n;
    return 0;
}

/* the libc function this one wraps, looked up once */
#define REAL(name) static __typeof__(&name) real_##name; \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    return fails(fd, n) ? -1 : real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    return fails(fd, n) ? -1 : real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64);
    return fails(fd, n) ? -1 : real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    return fails(fd, n) ? -1 : real_writev(fd, iov, cnt);
}

ssize_t sendfile(int out, int in, off_t *off, size_t n) {     /* shutil.copyfile's fast path */
    REAL(sendfile);
    return fails(out, n) ? -1 : real_sendfile(out, in, off, n);
}

ssize_t sendfile64(int out, int in, off_t *off, size_t n) {
    REAL(sendfile64);
    return fails(out, n) ? -1 : real_sendfile64(out, in, off, n);
}

ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t n, unsigned flags) {
    REAL(copy_file_range);
    return fails(out, n) ? -1 : real_copy_file_range(in, in_off, out, out_off, n, flags);
}

int fsync(int fd) {
    REAL(fsync);
    return fails(fd, 0) ? -1 : real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    return fails(fd, 0) ? -1 : real_fdatasync(fd);
}
