/* test_storage_blob.c -- the local blob store on a real temp directory.
 *
 * Checks the content addressing (ROOT/ab/<sha256>), deduplication, the temp-file
 * discipline (nothing left in ROOT/tmp after a failed write, sweep removes strays),
 * moving vs copying files in, and that no name other than 64 hex digits gets through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "core/hash.h"
#include "storage/blob.h"
#include "unit_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char root[128];
    tly_blob_store *bs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    tly_error err;
    if (unit_tmpdir(f->dir, sizeof f->dir, "blob") < 0)
        return -1;
    snprintf(f->root, sizeof f->root, "%s/blobs", f->dir);
    if (tly_blob_open(f->root, &f->bs, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tly_blob_close(f->bs);
    tly_remove_tree(f->dir);
    free(f);
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int tmp_entries(const struct fixture *f)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->root);
    return count_entries(tmp);
}

static void blob_path(const struct fixture *f, const char *sha, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%.2s/%s", f->root, sha, sha);
}

static void write_file(const char *path, const char *data)
{
    assert_int_equal(tly_write_file_atomic(path, data, strlen(data), 0644), 0);
}

static void test_put_buf_and_read(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    char sha[65], want[65], path[256];
    uint64_t size = 0;
    assert_string_equal(tly_blob_backend_name(f->bs), "file");
    assert_int_equal(tly_blob_put_buf(f->bs, "hello world", 11, sha, &err), 0);
    tly_sha256_hex("hello world", 11, want);
    assert_string_equal(sha, want);
    blob_path(f, sha, path, sizeof path);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(tly_blob_exists(f->bs, sha, &size, &err), 1);
    assert_int_equal(size, 11);
    assert_int_equal(tmp_entries(f), 0);

    tly_blob_reader *r;
    char buf[16] = {0};
    assert_int_equal(tly_blob_open_read(f->bs, sha, &r, &err), 0);
    assert_int_equal(tly_blob_reader_size(r), 11);
    assert_int_equal(tly_blob_read_at(r, buf, 5, 6), 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(tly_blob_read_at(r, buf, sizeof buf, 11), 0);
    assert_int_equal(tly_blob_read_at(r, buf, sizeof buf, 0), 11);
    int fd = tly_blob_reader_fd(r);
    assert_true(fd >= 0);
    memset(buf, 0, sizeof buf);
    assert_int_equal(pread(fd, buf, 5, 0), 5);
    assert_memory_equal(buf, "hello", 5);
    tly_blob_reader_close(r);

    tly_sha256_hex("absent", 6, want);
    assert_int_equal(tly_blob_exists(f->bs, want, NULL, &err), 0);
    assert_int_equal(tly_blob_open_read(f->bs, want, &r, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    assert_int_equal(tly_blob_delete(f->bs, sha, &err), 0);
    assert_int_equal(tly_blob_exists(f->bs, sha, NULL, &err), 0);
    assert_int_equal(tly_blob_delete(f->bs, sha, &err), 0);   /* idempotent */
}

static void test_writer(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_blob_writer *w;
    char sha[65], want[65];
    uint64_t size = 0;

    assert_int_equal(tly_blob_writer_new(f->bs, 1024, &w, &err), 0);
    assert_int_equal(tly_blob_write(w, "abc", 3, &err), 0);
    assert_int_equal(tly_blob_write(w, "def", 3, &err), 0);
    assert_int_equal(tmp_entries(f), 1);
    assert_int_equal(tly_blob_writer_commit(w, sha, &size, &err), 0);
    tly_sha256_hex("abcdef", 6, want);
    assert_string_equal(sha, want);
    assert_int_equal(size, 6);
    assert_int_equal(tmp_entries(f), 0);

    /* Over the cap: TOO_LARGE at once, temp file gone before abort/commit. */
    assert_int_equal(tly_blob_writer_new(f->bs, 10, &w, &err), 0);
    assert_int_equal(tly_blob_write(w, "12345678", 8, &err), 0);
    assert_int_equal(tly_blob_write(w, "12345", 5, &err), -1);
    assert_int_equal(err.status, TLY_E_TOO_LARGE);
    assert_string_equal(err.code, "too_large");
    assert_int_equal(tmp_entries(f), 0);
    assert_int_equal(tly_blob_write(w, "1", 1, &err), -1);
    assert_int_equal(tly_blob_writer_commit(w, sha, &size, &err), -1);
    assert_int_equal(err.status, TLY_E_TOO_LARGE);

    /* Exactly at the cap is fine; abort removes the temp file. */
    assert_int_equal(tly_blob_writer_new(f->bs, 4, &w, &err), 0);
    assert_int_equal(tly_blob_write(w, "1234", 4, &err), 0);
    tly_blob_writer_abort(w);
    assert_int_equal(tmp_entries(f), 0);
}

static void test_put_file(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    char src[160], sha[65], want[65], path[256];
    snprintf(src, sizeof src, "%s/upload.bin", f->dir);
    tly_sha256_hex("file body", 9, want);

    /* Copy: the source stays. */
    write_file(src, "file body");
    assert_int_equal(tly_blob_put_file(f->bs, src, NULL, 0, sha, &err), 0);
    assert_string_equal(sha, want);
    assert_int_equal(access(src, F_OK), 0);
    assert_int_equal(tly_blob_exists(f->bs, sha, NULL, &err), 1);

    /* Copy with a hash that does not match the bytes is refused. */
    char wrong[65];
    tly_sha256_hex("other", 5, wrong);
    assert_int_equal(tly_blob_put_file(f->bs, src, wrong, 0, sha, &err), -1);
    assert_string_equal(err.code, "sha256_mismatch");

    /* Move of bytes already stored: the source is just removed. */
    assert_int_equal(tly_blob_put_file(f->bs, src, NULL, 1, sha, &err), 0);
    assert_string_equal(sha, want);
    assert_int_equal(access(src, F_OK), -1);

    /* Move of new bytes with a trusted hash: renamed into place. */
    tly_sha256_hex("moved body", 10, want);
    write_file(src, "moved body");
    struct stat before, after;
    assert_int_equal(stat(src, &before), 0);
    assert_int_equal(tly_blob_put_file(f->bs, src, want, 1, sha, &err), 0);
    assert_string_equal(sha, want);
    assert_int_equal(access(src, F_OK), -1);
    blob_path(f, want, path, sizeof path);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);   /* renamed, not copied */
    assert_int_equal(tmp_entries(f), 0);

    /* A missing source file. */
    assert_int_equal(tly_blob_put_file(f->bs, src, NULL, 0, sha, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_blob_put_file(f->bs, src, NULL, 1, sha, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
}

/* Moving from another file system falls back to a copy (skipped when /dev/shm is
 * missing or on the same file system as the store). */
static void test_put_file_cross_device(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    char src[128], sha[65], want[65];
    struct stat a, b;
    if (stat("/dev/shm", &a) < 0 || stat(f->root, &b) < 0 || a.st_dev == b.st_dev) {
        skip();
        return;
    }
    snprintf(src, sizeof src, "/dev/shm/tally-blob-test-%d.bin", (int)getpid());
    write_file(src, "cross device");
    tly_sha256_hex("cross device", 12, want);
    assert_int_equal(tly_blob_put_file(f->bs, src, NULL, 1, sha, &err), 0);
    assert_string_equal(sha, want);
    assert_int_equal(access(src, F_OK), -1);
    assert_int_equal(tly_blob_exists(f->bs, sha, NULL, &err), 1);
    assert_int_equal(tmp_entries(f), 0);
}

static void test_dedup(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    char a[65], b[65], dir[256];
    assert_int_equal(tly_blob_put_buf(f->bs, "same", 4, a, &err), 0);
    assert_int_equal(tly_blob_put_buf(f->bs, "same", 4, b, &err), 0);
    assert_string_equal(a, b);
    snprintf(dir, sizeof dir, "%s/%.2s", f->root, a);
    assert_int_equal(count_entries(dir), 1);
    /* Root holds tmp and the 256 fan-out directories made at open. */
    assert_int_equal(count_entries(f->root), 257);
    assert_int_equal(tmp_entries(f), 0);
}

static void test_invalid_names(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_blob_reader *r;
    char good[65], upper[65], src[160];
    tly_sha256_hex("x", 1, good);
    memcpy(upper, good, sizeof upper);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    const char *bad[] = {"../../../../etc/passwd", "", upper, "abc",
                         "0000000000000000000000000000000000000000000000000000000000000000/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.status = TLY_OK;
        assert_int_equal(tly_blob_exists(f->bs, bad[i], NULL, &err), -1);
        assert_int_equal(err.status, TLY_E_INVALID);
        err.status = TLY_OK;
        assert_int_equal(tly_blob_delete(f->bs, bad[i], &err), -1);
        assert_int_equal(err.status, TLY_E_INVALID);
        err.status = TLY_OK;
        assert_int_equal(tly_blob_open_read(f->bs, bad[i], &r, &err), -1);
        assert_int_equal(err.status, TLY_E_INVALID);
    }
    snprintf(src, sizeof src, "%s/in.bin", f->dir);
    write_file(src, "x");
    assert_int_equal(tly_blob_put_file(f->bs, src, "../escape", 1, good, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(access(src, F_OK), 0);   /* untouched */
}

static void test_sweep_tmp(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    char p[256];
    const char *names[] = {"a.tmp", "b.tmp", "keep.txt"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/tmp/%s", f->root, names[i]);
        write_file(p, "junk");
    }
    assert_int_equal(tly_blob_sweep_tmp(f->bs, &err), 2);
    assert_int_equal(tmp_entries(f), 1);
    snprintf(p, sizeof p, "%s/tmp/keep.txt", f->root);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(tly_blob_sweep_tmp(f->bs, &err), 0);
}

/* Group put: good files land (and leave their paths), a bad name fails alone,
 * content already stored is dropped, and nothing is left in tmp. */
static void test_put_files(void **state)
{
    struct fixture *f = *state;
    tly_error err, errs[4];
    char paths[4][160], shas[4][65], existing[65];
    const char *data[4] = {"alpha", "beta", "gamma", "alpha"};
    assert_int_equal(tly_blob_put_buf(f->bs, "gamma", 5, existing, &err), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/in-%d", f->dir, i);
        write_file(paths[i], data[i]);
        tly_sha256_hex(data[i], strlen(data[i]), shas[i]);
    }
    const char *p[5] = {paths[0], paths[1], paths[2], paths[3], paths[0]};
    const char *h[5] = {shas[0], shas[1], shas[2], shas[3], "not-a-hash"};
    int results[5];
    tly_error errs5[5];
    (void)errs;
    assert_int_equal(tly_blob_put_files(f->bs, 5, p, h, results, errs5), 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(results[i], 0);
        assert_int_equal(tly_blob_exists(f->bs, shas[i], NULL, &err), 1);
        assert_int_equal(access(paths[i], F_OK), -1);   /* moved or dropped */
    }
    assert_int_equal(results[4], -1);
    assert_int_equal(errs5[4].status, TLY_E_INVALID);
    char path[256];
    blob_path(f, shas[1], path, sizeof path);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(tmp_entries(f), 0);
    assert_int_equal(tly_blob_put_files(f->bs, 0, NULL, NULL, NULL, NULL), 0);
}

static void test_open_urls(void **state)
{
    (void)state;
    tly_blob_store *bs = NULL;
    tly_error err;
    char dir[64], url[128];
    snprintf(dir, sizeof dir, "/tmp/tally-bloburl-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof url, "file:%s/nested/root", dir);
    assert_int_equal(tly_blob_open(url, &bs, &err), 0);
    char sha[65];
    assert_int_equal(tly_blob_put_buf(bs, "", 0, sha, &err), 0);   /* empty blob is valid */
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    tly_blob_close(bs);
    tly_remove_tree(dir);

    /* Unknown schemes are refused by name; s3:// is its own backend (test_storage_s3.c). */
    assert_int_equal(tly_blob_open("gcs://bucket/prefix", &bs, &err), -1);
    assert_int_equal(err.status, TLY_E_UNSUPPORTED);
    assert_null(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_buf_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_file_cross_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_files, setup, teardown),
        cmocka_unit_test(test_open_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
