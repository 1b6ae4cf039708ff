/* test_storage_s3.c -- the S3 blob backend against a real S3-compatible server.
 *
 * Starts s3rver (npm package, tests/s3; installed by `make test`'s set-up) on a free
 * loopback port with a throwaway directory, and drives the blob store through the
 * public blob.h API: small and multipart (> 16 MB) writes read back byte for byte
 * through ranged reads, adopting a file, existence, deletion, the bucket being
 * created on request, and clear errors for a missing bucket, an unknown key and a
 * malformed URL. s3rver does not verify V4 signatures (it checks the access key
 * only); the signatures themselves are checked in test_storage_sigv4.c.
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

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TALLY_S3RVER
#define TALLY_S3RVER TALLY_TEST_DATA "/../s3/node_modules/.bin/s3rver"
#endif

static char dir[64];
static int port;
static pid_t server = -1;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int answers(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int start_server(void **state)
{
    (void)state;
    if (access(TALLY_S3RVER, X_OK) != 0) {
        fprintf(stderr, "s3rver not found at %s: run `make test` (it installs it) or npm ci in tests/s3\n",
                TALLY_S3RVER);
        return -1;
    }
    if (unit_tmpdir(dir, sizeof dir, "s3") < 0 || (port = free_port()) < 0)
        return -1;
    char data[128], portstr[16];
    snprintf(data, sizeof data, "%s/server", dir);
    snprintf(portstr, sizeof portstr, "%d", port);
    if (tly_mkdirs(data, 0700) < 0)
        return -1;
    server = fork();
    if (server == 0) {
        execl(TALLY_S3RVER, "s3rver", "-d", data, "-p", portstr, "-a", "127.0.0.1", "--silent", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !answers(port); i++)
        usleep(50000);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    unsetenv("AWS_SESSION_TOKEN");
    return answers(port) ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    tly_remove_tree(dir);
    return 0;
}

static void url_of(char *out, size_t outsz, const char *bucket, const char *extra)
{
    snprintf(out, outsz, "s3://%s/tally?endpoint=http://127.0.0.1:%d&region=us-east-1&tmp=%s/spool%s", bucket, port,
             dir, extra);
}

static tly_blob_store *open_store(void)
{
    char url[512];
    url_of(url, sizeof url, "media", "&create=1");
    tly_blob_store *bs = NULL;
    tly_error err;
    if (tly_blob_open(url, &bs, &err) < 0)
        fail_msg("open %s: %s", url, err.message);
    assert_string_equal(tly_blob_backend_name(bs), "s3");
    return bs;
}

static void read_all(tly_blob_store *bs, const char *sha, unsigned char *out, size_t size, size_t step)
{
    tly_blob_reader *r = NULL;
    tly_error err;
    assert_int_equal(tly_blob_open_read(bs, sha, &r, &err), 0);
    assert_int_equal(tly_blob_reader_size(r), size);
    assert_int_equal(tly_blob_reader_fd(r), -1);   /* no fd: the server streams through read_at */
    size_t got = 0;
    while (got < size) {
        ssize_t n = tly_blob_read_at(r, out + got, step, got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(tly_blob_read_at(r, out, 16, size), 0);   /* at the end */
    tly_blob_reader_close(r);
}

static void small_blob_round_trip(void **state)
{
    (void)state;
    tly_blob_store *bs = open_store();
    tly_error err;
    char sha[65], again[65];
    assert_int_equal(tly_blob_put_buf(bs, "hello, bucket", 13, sha, &err), 0);
    char expect[65];
    tly_sha256_hex("hello, bucket", 13, expect);
    assert_string_equal(sha, expect);
    assert_int_equal(tly_blob_put_buf(bs, "hello, bucket", 13, again, &err), 0);   /* same bytes: fine */
    uint64_t size = 0;
    assert_int_equal(tly_blob_exists(bs, sha, &size, &err), 1);
    assert_int_equal(size, 13);
    tly_blob_reader *r = NULL;
    assert_int_equal(tly_blob_open_read(bs, sha, &r, &err), 0);
    char buf[16] = {0};
    assert_int_equal(tly_blob_read_at(r, buf, 6, 7), 6);   /* a range in the middle */
    assert_string_equal(buf, "bucket");
    assert_int_equal(tly_blob_read_at(r, buf, 100, 7), 6);   /* clipped at the end */
    tly_blob_reader_close(r);
    assert_int_equal(tly_blob_delete(bs, sha, &err), 0);
    assert_int_equal(tly_blob_exists(bs, sha, NULL, &err), 0);
    assert_int_equal(tly_blob_open_read(bs, sha, &r, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_blob_delete(bs, sha, &err), 0);   /* deleting twice is fine */
    tly_blob_close(bs);
}

static void multipart_blob_round_trip(void **state)
{
    (void)state;
    tly_blob_store *bs = open_store();
    tly_error err;
    size_t size = (20u << 20) + 12345;   /* 3 parts, the last one short */
    unsigned char *data = malloc(size), *back = malloc(size);
    assert_non_null(data);
    assert_non_null(back);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    tly_blob_writer *w = NULL;
    assert_int_equal(tly_blob_writer_new(bs, 1ull << 30, &w, &err), 0);
    for (size_t off = 0; off < size; off += 1u << 20)
        assert_int_equal(tly_blob_write(w, data + off, size - off < (1u << 20) ? size - off : (1u << 20), &err), 0);
    char sha[65], expect[65];
    uint64_t stored = 0;
    if (tly_blob_writer_commit(w, sha, &stored, &err) < 0)
        fail_msg("commit: %s", err.message);
    tly_sha256_hex(data, size, expect);
    assert_string_equal(sha, expect);
    assert_int_equal(stored, size);
    read_all(bs, sha, back, size, 3u << 20);
    assert_memory_equal(data, back, size);
    /* Nothing left in the spool directory. */
    char spool[128];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    assert_int_equal(tly_blob_sweep_tmp(bs, &err), 0);
    free(data);
    free(back);
    tly_blob_close(bs);
}

static void adopting_a_file_moves_it(void **state)
{
    (void)state;
    tly_blob_store *bs = open_store();
    tly_error err;
    char path[128], sha[65];
    snprintf(path, sizeof path, "%s/upload.bin", dir);
    const char *text = "an uploaded file";
    assert_int_equal(tly_write_file_atomic(path, text, strlen(text), 0600), 0);
    assert_int_equal(tly_blob_put_file(bs, path, NULL, 1, sha, &err), 0);
    assert_int_equal(access(path, F_OK), -1);   /* taken */
    unsigned char back[32] = {0};
    read_all(bs, sha, back, strlen(text), 5);
    assert_memory_equal(back, text, strlen(text));
    tly_blob_close(bs);
}

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    strncat(arg, p, sz * n < 63 - strlen(arg) ? sz * n : 63 - strlen(arg));
    return sz * n;
}

static void presigned_url_serves_the_blob(void **state)
{
    (void)state;
    tly_blob_store *bs = open_store();
    tly_error err;
    char sha[65], url[2048];
    assert_int_equal(tly_blob_put_buf(bs, "presigned bytes", 15, sha, &err), 0);
    assert_int_equal(tly_blob_presign(bs, sha, 600, "image/png", url, sizeof url, &err), 0);
    assert_non_null(strstr(url, "X-Amz-Signature="));
    assert_non_null(strstr(url, "response-content-type=image%2Fpng"));
    /* Fetched with no credentials at all. */
    char body[64] = "";
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    assert_int_equal(status, 200);
    assert_string_equal(body, "presigned bytes");
    assert_non_null(type);
    assert_string_equal(type, "image/png");
    curl_easy_cleanup(c);
    assert_int_equal(tly_blob_presign(bs, sha, 0, "image/png", url, sizeof url, &err), -1);
    tly_blob_close(bs);
    /* The local store has no such URLs: said plainly. */
    char root[128];
    snprintf(root, sizeof root, "%s/local", dir);
    tly_blob_store *local = NULL;
    assert_int_equal(tly_blob_open(root, &local, &err), 0);
    assert_int_equal(tly_blob_presign(local, sha, 600, "image/png", url, sizeof url, &err), -1);
    assert_int_equal(err.status, TLY_E_UNSUPPORTED);
    tly_blob_close(local);
}

static void clear_errors(void **state)
{
    (void)state;
    char url[512];
    tly_blob_store *bs = NULL;
    tly_error err;
    url_of(url, sizeof url, "no-such-bucket", "");
    assert_int_equal(tly_blob_open(url, &bs, &err), -1);
    assert_non_null(strstr(err.message, "no-such-bucket"));
    assert_non_null(strstr(err.message, "create=1"));
    setenv("AWS_ACCESS_KEY_ID", "UNKNOWNKEY", 1);
    url_of(url, sizeof url, "media", "&create=1");
    assert_int_equal(tly_blob_open(url, &bs, &err), -1);
    assert_non_null(strstr(err.message, "403"));
    unsetenv("AWS_ACCESS_KEY_ID");
    assert_int_equal(tly_blob_open(url, &bs, &err), -1);
    assert_string_equal(err.code, "missing_credentials");
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    assert_int_equal(tly_blob_open("s3://?endpoint=http://127.0.0.1:1", &bs, &err), -1);
    assert_string_equal(err.code, "invalid_blob_url");
    assert_int_equal(tly_blob_open("s3://b?endpoint=ftp://x", &bs, &err), -1);
    assert_string_equal(err.code, "invalid_blob_url");
    /* Nobody listening: a transport error after the retries, not a hang. */
    char dead[256];
    snprintf(dead, sizeof dead, "s3://media?endpoint=http://127.0.0.1:%d", free_port());
    assert_int_equal(tly_blob_open(dead, &bs, &err), -1);
    assert_string_equal(err.code, "s3_unreachable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_blob_round_trip),
        cmocka_unit_test(multipart_blob_round_trip),
        cmocka_unit_test(adopting_a_file_moves_it),
        cmocka_unit_test(presigned_url_serves_the_blob),
        cmocka_unit_test(clear_errors),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
