/* harness.c -- see harness.h.
 *
 * Design notes:
 *  - Child processes (tallyd, the CLI) are started with fork+execve. Their argv and
 *    environment are built in the parent before fork, so the child only calls
 *    async-signal-safe functions (prctl, dup2, execve, _exit). PR_SET_PDEATHSIG makes
 *    a child receive SIGTERM if the test process dies; the getppid() check closes the
 *    race where the parent died before prctl ran.
 *  - Readiness: tallyd writes DIR/tallyd.addr after binding (atomically), so the
 *    harness removes any stale one first, then polls for it, then for /healthz 200,
 *    while watching for an early exit of the child.
 *  - Every HTTP request uses its own curl easy handle (simple and independent; the
 *    cost of a loopback connect is nothing next to a test). Response bodies are read
 *    into a capped tly_buf.
 *  - Ownership: it_server owns extra_args (deep copy) and the data dir; it_response
 *    owns body and json. Every function frees what it allocated on all paths.
 */
#include "harness.h"

#include "core/buf.h"
#include "core/fsutil.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 20000
#define CLI_TIMEOUT_MS 120000
#define RESPONSE_MAX ((size_t)512 << 20)
#define LOG_MAX ((size_t)64 << 20)
#define TAIL_BYTES 6000

/* ---- small utilities ---------------------------------------------------------- */

void it_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

long long it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *it_test_data(const char *name, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/%s", TALLY_TEST_DATA, name);
    return buf;
}

int it_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int64_t it_json_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

const char *it_json_str(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

json_t *it_json_find(const json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *el;
    json_array_foreach(array, i, el)
        if (strcmp(it_json_str(el, key), value) == 0)
            return el;
    return NULL;
}

int it_has_sanitizer_report(const char *text)
{
    return text && (strstr(text, "ERROR: AddressSanitizer") || strstr(text, "ERROR: LeakSanitizer") ||
                    strstr(text, "runtime error:") || strstr(text, "ERROR: ThreadSanitizer") ||
                    strstr(text, "WARNING: ThreadSanitizer"));
}

const char *it_err_code(const it_response *r)
{
    return it_json_str(json_object_get(r->json, "error"), "code");
}

const char *it_err_msg(const it_response *r)
{
    return it_json_str(json_object_get(r->json, "error"), "message");
}

double it_metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

unsigned char *it_load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)st.st_size) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

unsigned char *it_load_test_data(const char *name, size_t *len)
{
    char path[4096];
    unsigned char *b = it_load_file(it_test_data(name, path, sizeof path), len);
    if (!b)
        fprintf(stderr, "harness: cannot read %s\n", path);
    return b;
}

int it_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

int it_count_entries(const char *dir, const char *suffix, int verbose)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t l = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && (l < sl || strcmp(de->d_name + l - sl, suffix) != 0))
            continue;
        if (verbose)
            fprintf(stderr, "found %s/%s\n", dir, de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* The server's log from offset on (malloc'd, NUL-terminated), or NULL. */
static char *read_log(const it_server *s, long offset)
{
    FILE *f = fopen(s->log_path, "rb");
    if (!f)
        return NULL;
    tly_buf b;
    tly_buf_init(&b, LOG_MAX);
    char chunk[65536];
    size_t n;
    if (offset > 0 && fseek(f, offset, SEEK_SET) < 0)
        rewind(f);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (tly_buf_append(&b, chunk, n) < 0)
            break; /* keep what fits */
    fclose(f);
    return tly_buf_detach(&b);
}

static void print_log_tail(const it_server *s, const char *why)
{
    char *log = read_log(s, s->log_offset);
    size_t len = log ? strlen(log) : 0;
    const char *tail = len > TAIL_BYTES ? log + len - TAIL_BYTES : log;
    fprintf(stderr, "harness: %s\n---- %s (last %zu bytes) ----\n%s\n---- end of log ----\n", why,
            s->log_path, len > TAIL_BYTES ? (size_t)TAIL_BYTES : len, tail ? tail : "(no log)");
    free(log);
}

static int wait_child(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (it_now_ms() > deadline)
            return 1;
        it_sleep_ms(5);
    }
}

/* fork+execve with stdout/stderr to the given fds (stdin from /dev/null). */
/* in_fd: the child's stdin, or -1 for /dev/null. */
static pid_t spawn(const char *prog, char *const argv[], char *const envp[], int in_fd, int out_fd,
                   int err_fd)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
            _exit(126);
        if (in_fd >= 0)
            dup2(in_fd, STDIN_FILENO);
        else if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        execve(prog, argv, envp);
        static const char msg[] = "harness: execve failed\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    if (devnull >= 0)
        close(devnull);
    return pid;
}

/* ---- HTTP ----------------------------------------------------------------------- */

typedef struct {
    tly_buf body;
    it_response *out;
} http_ctx;

/* Set while probing /healthz during start-up, when refused connections are expected. */
static int quiet_transport;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    http_ctx *c = userp;
    return tly_buf_append(&c->body, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

void it_copy_header_value(char *dst, size_t dstsz, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    http_ctx *c = userp;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        c->out->content_type[0] = '\0';
        c->out->etag[0] = '\0';
    } else if (n > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        it_copy_header_value(c->out->content_type, sizeof c->out->content_type, data + 13, n - 13);
    } else if (n > 5 && strncasecmp(data, "ETag:", 5) == 0) {
        it_copy_header_value(c->out->etag, sizeof c->out->etag, data + 5, n - 5);
    }
    return n;
}

typedef struct {
    FILE *f;
} upload_src;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    upload_src *u = userp;
    size_t n = fread(dst, 1, size * nmemb, u->f);
    if (n == 0 && ferror(u->f))
        return CURL_READFUNC_ABORT;
    return n;
}

static int do_request(it_server *s, const char *method, const char *path, const char *token,
                      const char *content_type, const void *body, size_t len, FILE *upload,
                      uint64_t upload_size, it_response *out)
{
    memset(out, 0, sizeof *out);
    http_ctx c;
    tly_buf_init(&c.body, RESPONSE_MAX);
    c.out = out;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char *url = NULL;
    int rc = -1;
    char errbuf[CURL_ERROR_SIZE] = "";
    upload_src src = { upload };
    if (!curl || asprintf(&url, "%s%s", s->base_url, path) < 0) {
        url = NULL;
        fprintf(stderr, "harness: out of memory\n");
        goto out;
    }
    if (token) {
        char auth[512];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    if (content_type) {
        char ct[256];
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    if (upload) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &src);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload_size);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        }
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        if (!quiet_transport)
            fprintf(stderr, "harness: %s %s: %s\n", method, url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
        out->content_type[0] = out->etag[0] = '\0';
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    rc = 0;
out:
    out->len = c.body.len;
    out->body = tly_buf_detach(&c.body);
    if (rc == 0 && out->body && out->len > 0 &&
        (strstr(out->content_type, "json") || out->body[0] == '{' || out->body[0] == '['))
        out->json = json_loadb(out->body, out->len, 0, NULL);
    if (rc < 0)
        out->status = 0;
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(url);
    return rc;
}

int it_request(it_server *s, const char *method, const char *path, const char *token,
               const char *content_type, const void *body, size_t len, it_response *out)
{
    return do_request(s, method, path, token, content_type, body, len, NULL, 0, out);
}

int it_request_json(it_server *s, const char *method, const char *path, const char *token,
                    const char *json_text_or_NULL, it_response *out)
{
    return do_request(s, method, path, token, json_text_or_NULL ? "application/json" : NULL,
                      json_text_or_NULL, json_text_or_NULL ? strlen(json_text_or_NULL) : 0, NULL,
                      0, out);
}

int it_getf(it_server *s, const char *token, it_response *out, const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof path) {
        memset(out, 0, sizeof *out);
        fprintf(stderr, "harness: it_getf: path too long\n");
        return -1;
    }
    return it_request(s, "GET", path, token, NULL, NULL, 0, out);
}

int it_requestf(it_server *s, const char *method, const char *token, const char *body,
                it_response *out, const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap); /* a longer path is cut, as the tests expect */
    va_end(ap);
    return it_request_json(s, method, path, token, body, out);
}

/* "/v1/batches/B/files/<escaped name>" (malloc'd) or NULL. */
static char *file_path(int64_t batch_id, const char *name)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    char *p = NULL;
    if (esc && asprintf(&p, "/v1/batches/%lld/files/%s", (long long)batch_id, esc) < 0)
        p = NULL;
    curl_free(esc);
    return p;
}

int it_upload_file(it_server *s, const char *token, int64_t batch_id, const char *name,
                   const char *path, it_response *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "harness: cannot open %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    char *p = file_path(batch_id, name);
    int rc = -1;
    if (p)
        rc = do_request(s, "PUT", p, token, "application/octet-stream", NULL, 0, f,
                        (uint64_t)st.st_size, out);
    free(p);
    fclose(f);
    return rc;
}

int it_upload_bytes(it_server *s, const char *token, int64_t batch_id, const char *name,
                    const void *data, size_t len, it_response *out)
{
    memset(out, 0, sizeof *out);
    char *p = file_path(batch_id, name);
    if (!p)
        return -1;
    int rc = do_request(s, "PUT", p, token, "application/octet-stream", data ? data : "", len,
                        NULL, 0, out);
    free(p);
    return rc;
}

void it_response_free(it_response *r)
{
    if (!r)
        return;
    free(r->body);
    if (r->json)
        json_decref(r->json);
    r->body = NULL;
    r->json = NULL;
    r->len = 0;
}

/* ---- server lifecycle ------------------------------------------------------------ */

static int launch(it_server *s)
{
    char addr_path[4200], token_path[4200];
    snprintf(addr_path, sizeof addr_path, "%s/tallyd.addr", s->data_dir);
    snprintf(token_path, sizeof token_path, "%s/admin.token", s->data_dir);
    unlink(addr_path); /* a stale one from a previous run must not be read */
    s->port = 0;
    s->base_url[0] = '\0';

    int logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        fprintf(stderr, "harness: cannot open %s: %s\n", s->log_path, strerror(errno));
        return -1;
    }
    s->log_offset = (long)lseek(logfd, 0, SEEK_END);

    size_t nextra = 0;
    while (s->extra_args && s->extra_args[nextra])
        nextra++;
    char **argv = calloc(nextra + 10, sizeof *argv);
    if (!argv) {
        close(logfd);
        return -1;
    }
    size_t argc = 0;
    argv[argc++] = (char *)TALLYD_PATH;
    argv[argc++] = (char *)"--data";
    argv[argc++] = s->data_dir;
    argv[argc++] = (char *)"--listen";
    argv[argc++] = (char *)"127.0.0.1:0";
    if (s->blobs_url[0]) {   /* an S3 run or a second node (harness_db.c) */
        argv[argc++] = (char *)"--blobs";
        argv[argc++] = s->blobs_url;
    }
    if (s->db_url[0]) {   /* a PostgreSQL run (harness_db.c) */
        argv[argc++] = (char *)"--db";
        argv[argc++] = s->db_url;
    }
    for (size_t i = 0; i < nextra; i++)
        argv[argc++] = s->extra_args[i];
    s->pid = spawn(TALLYD_PATH, argv, environ, -1, logfd, logfd);
    free(argv);
    close(logfd);
    if (s->pid < 0) {
        s->pid = 0;
        fprintf(stderr, "harness: fork failed: %s\n", strerror(errno));
        return -1;
    }

    long long deadline = it_now_ms() + START_TIMEOUT_MS;
    const char *why = NULL;
    int status;
    for (;;) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            why = "tallyd exited during start-up";
            break;
        }
        if (it_now_ms() > deadline) {
            why = "tallyd did not become ready within 20 s";
            break;
        }
        if (!s->port) {
            size_t n = 0;
            char *addr = tly_read_file(addr_path, 255, &n);
            char *colon = addr ? strrchr(addr, ':') : NULL;
            if (colon && n > 0 && addr[n - 1] == '\n') {
                int port = atoi(colon + 1);
                if (port > 0 && port < 65536) {
                    s->port = port;
                    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", port);
                }
            }
            free(addr);
        }
        if (s->port) {
            it_response r;
            quiet_transport = 1;
            int rc = it_request(s, "GET", "/healthz", NULL, NULL, NULL, 0, &r);
            quiet_transport = 0;
            long st = r.status;
            it_response_free(&r);
            if (rc == 0 && st == 200)
                break;
        }
        it_sleep_ms(20);
    }
    if (!why) {
        size_t n = 0;
        char *tok = tly_read_file(token_path, sizeof s->admin_token - 1, &n);
        while (tok && n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
            tok[--n] = '\0';
        if (tok && n > 0)
            memcpy(s->admin_token, tok, n + 1);
        else
            why = "cannot read admin.token";
        free(tok);
    }
    if (why) {
        print_log_tail(s, why);
        if (s->pid > 0)
            it_server_kill(s);
        return -1;
    }
    return 0;
}

static void free_args(it_server *s)
{
    if (s->extra_args) {
        for (size_t i = 0; s->extra_args[i]; i++)
            free(s->extra_args[i]);
        free(s->extra_args);
        s->extra_args = NULL;
    }
}

/* Replaces s->extra_args with a deep copy of args (NULL-terminated, may be NULL). */
static int set_args(it_server *s, const char *const *args)
{
    free_args(s);
    size_t n = 0;
    while (args && args[n])
        n++;
    s->extra_args = calloc(n + 1, sizeof *s->extra_args);
    if (!s->extra_args)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(s->extra_args[i] = strdup(args[i])))
            return -1; /* cleanup frees the partial copy */
    return 0;
}

int it_server_start(it_server *s, const char *const *extra_args)
{
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(s->data_dir, sizeof s->data_dir, "%s/tally-it-XXXXXX", tmp);
    if (!mkdtemp(s->data_dir)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", s->data_dir, strerror(errno));
        s->data_dir[0] = '\0';
        return -1;
    }
    snprintf(s->log_path, sizeof s->log_path, "%s/tallyd.log", s->data_dir);
    if (set_args(s, extra_args) < 0 || it_db_create(s) < 0)
        return -1;
    return launch(s);
}

int it_server_restart_args(it_server *s, const char *const *extra_args)
{
    if (s->pid > 0) {
        fprintf(stderr, "harness: it_server_restart_args: the server is still running\n");
        return -1;
    }
    if (set_args(s, extra_args) < 0)
        return -1;
    return it_server_restart(s);
}

int it_server_restart(it_server *s)
{
    if (s->pid > 0) {
        fprintf(stderr, "harness: it_server_restart: the server is still running\n");
        return -1;
    }
    s->admin_token[0] = '\0';
    return launch(s);
}

int it_server_stop(it_server *s)
{
    if (s->pid <= 0) {
        fprintf(stderr, "harness: it_server_stop: no server running\n");
        return -1;
    }
    int status = 0, rc = 0;
    const char *why = NULL;
    kill(s->pid, SIGTERM);
    int w = wait_child(s->pid, STOP_TIMEOUT_MS, &status);
    if (w != 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        why = "tallyd did not exit within 20 s of SIGTERM (killed)";
    } else if (WIFSIGNALED(status)) {
        why = "tallyd was killed by a signal";
        fprintf(stderr, "harness: tallyd died of signal %d\n", WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "harness: tallyd exited with status %d\n", WEXITSTATUS(status));
        why = "tallyd exited with a non-zero status";
    }
    s->pid = 0;
    if (!why) {
        char *log = read_log(s, s->log_offset);
        if (it_has_sanitizer_report(log))
            why = "sanitizer report in the tallyd log";
        free(log);
    }
    if (why) {
        print_log_tail(s, why);
        rc = -1;
    }
    return rc;
}

void it_server_kill(it_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
}

void it_server_cleanup(it_server *s)
{
    it_server_kill(s);
    it_db_drop(s);
    free_args(s);
    if (s->data_dir[0]) {
        if (getenv("TALLY_IT_KEEP"))
            fprintf(stderr, "harness: keeping %s (TALLY_IT_KEEP)\n", s->data_dir);
        else
            tly_remove_tree(s->data_dir);
        s->data_dir[0] = '\0';
    }
}

/* ---- domain helpers ------------------------------------------------------------ */

char *it_create_user(it_server *s, const char *name, const char *role)
{
    json_t *body = json_pack("{s:s, s:s}", "name", name, "role", role);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return NULL;
    it_response r;
    char *token = NULL;
    if (it_request_json(s, "POST", "/v1/users", s->admin_token, text, &r) == 0) {
        if (r.status == 201 && *it_json_str(r.json, "token"))
            token = strdup(it_json_str(r.json, "token"));
        else
            fprintf(stderr, "harness: create user %s: HTTP %ld %s\n", name, r.status, r.body);
    }
    it_response_free(&r);
    free(text);
    return token;
}

int it_server_start_users(it_server *s, const char *const *extra_args, char **mgr, char **worker,
                          char **consumer)
{
    char **const tokens[3] = { mgr, worker, consumer };
    static const char *const names[3][2] = { { "pm", "manager" }, { "w1", "worker" }, { "ml", "consumer" } };
    int rc = it_server_start(s, extra_args);
    for (int i = 0; i < 3; i++) {
        if (!tokens[i])
            continue;
        *tokens[i] = rc == 0 ? it_create_user(s, names[i][0], names[i][1]) : NULL;
        if (!*tokens[i])
            rc = -1;
    }
    if (rc != 0) {
        for (int i = 0; i < 3; i++)
            if (tokens[i]) {
                free(*tokens[i]);
                *tokens[i] = NULL;
            }
        it_server_cleanup(s);
    }
    return rc;
}

int it_server_finish(it_server *s)
{
    int rc = s->pid > 0 ? it_server_stop(s) : -1;
    it_server_cleanup(s);
    return rc;
}

/* POST text to path; on 201 returns the "id" member, else -1 (logged). */
static int64_t post_for_id(it_server *s, const char *token, const char *path, json_t *body,
                           const char *what)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        fprintf(stderr, "harness: %s: cannot build the request\n", what);
        return -1;
    }
    it_response r;
    int64_t id = -1;
    if (it_request_json(s, "POST", path, token, text, &r) == 0) {
        if (r.status == 201)
            id = it_json_int(r.json, "id");
        else
            fprintf(stderr, "harness: %s: HTTP %ld %s\n", what, r.status, r.body);
    }
    it_response_free(&r);
    free(text);
    return id;
}

int64_t it_create_project(it_server *s, const char *token, const char *name, const char *media,
                          const char *template_json)
{
    json_error_t jerr;
    json_t *tpl = json_loads(template_json, 0, &jerr);
    if (!tpl) {
        fprintf(stderr, "harness: it_create_project: bad template JSON: %s\n", jerr.text);
        return -1;
    }
    json_t *body = json_pack("{s:s, s:s, s:o}", "name", name, "media", media, "template", tpl);
    int64_t id = post_for_id(s, token, "/v1/projects", body, "create project");
    json_decref(body);
    return id;
}

int64_t it_create_batch(it_server *s, const char *token, int64_t project_id, const char *name,
                        const char *source_json)
{
    json_t *src = source_json ? json_loads(source_json, 0, NULL)
                              : json_pack("{s:s}", "kind", "upload");
    if (!src) {
        fprintf(stderr, "harness: it_create_batch: bad source JSON\n");
        return -1;
    }
    json_t *body = json_pack("{s:s, s:o}", "name", name ? name : "it-batch", "source", src);
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld/batches", (long long)project_id);
    int64_t id = post_for_id(s, token, path, body, "create batch");
    json_decref(body);
    return id;
}

long it_close_batch(it_server *s, const char *token, int64_t batch_id)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/batches/%lld/close", (long long)batch_id);
    it_response r;
    long st = -1;
    if (it_request_json(s, "POST", path, token, NULL, &r) == 0)
        st = r.status;
    it_response_free(&r);
    return st;
}

json_t *it_wait_batch(it_server *s, const char *token, int64_t batch_id, int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    char path[96];
    snprintf(path, sizeof path, "/v1/batches/%lld", (long long)batch_id);
    for (;;) {
        it_response r;
        if (it_request(s, "GET", path, token, NULL, NULL, 0, &r) < 0 || r.status != 200) {
            fprintf(stderr, "harness: GET %s: HTTP %ld %s\n", path, r.status, r.body ? r.body : "");
            it_response_free(&r);
            return NULL;
        }
        char state[32];   /* a copy: r.json goes before the timeout message */
        snprintf(state, sizeof state, "%s", it_json_str(r.json, "state"));
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0) {
            json_t *b = json_incref(r.json);
            it_response_free(&r);
            return b;
        }
        it_response_free(&r);
        if (it_now_ms() > deadline) {
            fprintf(stderr, "harness: batch %lld not finished after %d ms (state %s)\n",
                    (long long)batch_id, timeout_ms, state);
            return NULL;
        }
        it_sleep_ms(50);
    }
}

int it_write_temp(it_server *s, const char *name, const void *data, size_t len, char *path_out,
                  size_t path_outsz)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", s->data_dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (tly_mkdirs(path, 0700) < 0)
        return -1;
    *slash = '/';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = tly_write_all(fd, data, len);
    close(fd);
    if (rc == 0 && path_out)
        snprintf(path_out, path_outsz, "%s", path);
    return rc;
}

/* ---- the CLI ----------------------------------------------------------------------- */

/* environ without TALLY_URL/TALLY_TOKEN/XDG_CONFIG_HOME, plus the given ones
 * (token_kv may be NULL). The caller frees the array only: its strings are borrowed. */
static char **build_env(const char *url_kv, const char *token_kv, const char *xdg_kv)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TALLY_URL=", 10) != 0 &&
            strncmp(environ[i], "TALLY_TOKEN=", 12) != 0 &&
            strncmp(environ[i], "XDG_CONFIG_HOME=", 16) != 0)
            env[k++] = environ[i];
    env[k++] = (char *)url_kv;
    env[k++] = (char *)xdg_kv;
    if (token_kv)
        env[k++] = (char *)token_kv;
    return env;
}

static char *slurp_unlink(const char *path)
{
    FILE *f = fopen(path, "rb");
    tly_buf b;
    tly_buf_init(&b, RESPONSE_MAX);
    if (f) {
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            if (tly_buf_append(&b, chunk, n) < 0)
                break;
        fclose(f);
    }
    unlink(path);
    return tly_buf_detach(&b);
}

/* it_run_cli and it_run_cli_input: input NULL gives the CLI /dev/null as stdin. */
static int run_cli(it_server *s, const char *token, const char *const *args, const char *input,
                   char **out, char **err_out)
{
    static int seq;
    if (out)
        *out = NULL;
    if (err_out)
        *err_out = NULL;
    if (!s->data_dir[0]) {
        fprintf(stderr, "harness: it_run_cli needs a started server\n");
        return -1;
    }
    char out_path[4400], err_path[4400], cfg[4400], in_path[4400];
    int id = ++seq;
    snprintf(in_path, sizeof in_path, "%s/cli-%d.in", s->data_dir, id);
    snprintf(out_path, sizeof out_path, "%s/cli-%d.out", s->data_dir, id);
    snprintf(err_path, sizeof err_path, "%s/cli-%d.err", s->data_dir, id);
    snprintf(cfg, sizeof cfg, "%s/cli-config", s->data_dir);

    char *url_kv = NULL, *token_kv = NULL, *xdg_kv = NULL;
    char **env = NULL, **argv = NULL;
    int ifd = -1, ofd = -1, efd = -1, rc = -1;
    size_t nargs = 0;
    while (args && args[nargs])
        nargs++;
    if (asprintf(&url_kv, "TALLY_URL=%s", s->base_url) < 0)
        url_kv = NULL;
    if (token && asprintf(&token_kv, "TALLY_TOKEN=%s", token) < 0)
        token_kv = NULL;
    if (asprintf(&xdg_kv, "XDG_CONFIG_HOME=%s", cfg) < 0)
        xdg_kv = NULL;
    argv = calloc(nargs + 2, sizeof *argv);
    if (!url_kv || !xdg_kv || (token && !token_kv) || !argv ||
        !(env = build_env(url_kv, token_kv, xdg_kv))) {
        fprintf(stderr, "harness: out of memory\n");
        goto out;
    }
    argv[0] = (char *)TALLY_CLI_PATH;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];
    if (input) {
        int wfd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int wrc = wfd < 0 ? -1 : tly_write_all(wfd, input, strlen(input));
        if (wfd >= 0)
            close(wfd);
        ifd = wrc < 0 ? -1 : open(in_path, O_RDONLY | O_CLOEXEC);
        unlink(in_path);
        if (ifd < 0) {
            fprintf(stderr, "harness: cannot create the CLI's input file: %s\n", strerror(errno));
            goto out;
        }
    }
    ofd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ofd < 0 || efd < 0) {
        fprintf(stderr, "harness: cannot create CLI output files: %s\n", strerror(errno));
        goto out;
    }
    pid_t pid = spawn(TALLY_CLI_PATH, argv, env, ifd, ofd, efd);
    if (pid < 0) {
        fprintf(stderr, "harness: fork failed: %s\n", strerror(errno));
        goto out;
    }
    int status = 0;
    if (wait_child(pid, CLI_TIMEOUT_MS, &status) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "harness: the CLI timed out (killed)\n");
    }
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char *o = slurp_unlink(out_path), *e = slurp_unlink(err_path);
    if (it_has_sanitizer_report(e)) {
        fprintf(stderr, "harness: sanitizer report from the CLI:\n%s\n", e);
        rc = -1;
    }
    if (out)
        *out = o;
    else
        free(o);
    if (err_out)
        *err_out = e;
    else
        free(e);
out:
    if (ifd >= 0)
        close(ifd);
    if (ofd >= 0)
        close(ofd);
    if (efd >= 0)
        close(efd);
    free(env);
    free(argv);
    free(url_kv);
    free(token_kv);
    free(xdg_kv);
    return rc;
}

int it_run_cli(it_server *s, const char *token, const char *const *args, char **out,
               char **err_out)
{
    return run_cli(s, token, args, NULL, out, err_out);
}

int it_run_cli_input(it_server *s, const char *token, const char *const *args,
                     const char *input, char **out, char **err_out)
{
    return run_cli(s, token, args, input ? input : "", out, err_out);
}

/* ---- asserting helpers ------------------------------------------------------------- */

unsigned char *it_jpeg_variant(const unsigned char *base, size_t len, const char *label, int n,
                               size_t *out_len)
{
    char text[64];
    int tl = snprintf(text, sizeof text, "%s %d", label, n);
    size_t seg = 4 + (size_t)tl;
    unsigned char *b = malloc(len + seg);
    assert_non_null(b);
    memcpy(b, base, 2); /* FF D8 */
    b[2] = 0xFF;
    b[3] = 0xFE;
    b[4] = (unsigned char)(((size_t)tl + 2) >> 8);
    b[5] = (unsigned char)(((size_t)tl + 2) & 0xFF);
    memcpy(b + 6, text, (size_t)tl);
    memcpy(b + seg + 2, base + 2, len - 2);
    *out_len = len + seg;
    return b;
}

char *it_new_user(it_server *s, int *seq, const char *role)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%d", role, ++*seq);
    char *tok = it_create_user(s, name, role);
    assert_non_null(tok);
    return tok;
}

int64_t it_post_project(it_server *s, const char *token, const char *body)
{
    it_response r;
    assert_int_equal(it_request_json(s, "POST", "/v1/projects", token, body, &r), 0);
    IT_ASSERT_STATUS(r, 201);
    int64_t id = it_json_int(r.json, "id");
    assert_true(id > 0);
    it_response_free(&r);
    return id;
}

int64_t it_post_fixed_overlap_project(it_server *s, const char *token, const char *name, const char *template_json,
                                      int overlap)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"name\":\"%s\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":%d,"
                         "\"max_overlap\":5,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,"
                         "\"min_confidence\":0}}",
                         name, template_json, overlap) > 0);
    int64_t id = it_post_project(s, token, body);
    free(body);
    return id;
}

int it_group_start(it_server *s, char **mgr)
{
    curl_global_init(CURL_GLOBAL_ALL);
    return it_server_start_users(s, NULL, mgr, NULL, NULL);
}

int it_group_finish(it_server *s, char **mgr)
{
    int rc = it_server_finish(s);
    free(*mgr);
    *mgr = NULL;
    curl_global_cleanup();
    return rc;
}

int64_t it_prelabel_project(it_server *s, const char *token, int *seq, const char *prefix,
                            const char *media, const char *template_json)
{
    size_t n = strlen(template_json) + 512;
    char *body = malloc(n);
    assert_non_null(body);
    snprintf(body, n, "{\"name\":\"%s-%d\",\"media\":\"%s\",\"template\":%s,\"workflow\":%s}", prefix,
             ++*seq, media, template_json, IT_PRELABEL_WORKFLOW);
    int64_t id = it_post_project(s, token, body);
    free(body);
    return id;
}

json_t *it_wait_prediction(it_server *s, const char *token, int64_t item, const char *model,
                           int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        json_t *list = it_json_requestf(s, "GET", token, NULL, 200, "/v1/items/%lld/predictions", (long long)item);
        json_t *items = json_object_get(list, "items");
        json_t *p = model ? it_json_find(items, "model", model) : json_array_get(items, 0);
        if (p) {
            json_incref(p);
            json_decref(list);
            return p;
        }
        json_decref(list);
        if (it_now_ms() >= deadline)
            fail_msg("item %lld: no prediction%s%s after %d ms", (long long)item, model ? " by " : "",
                     model ? model : "", timeout_ms);
        it_sleep_ms(100);
    }
}

void it_finish_batch(it_server *s, const char *token, int64_t batch, int accepted)
{
    assert_int_equal(it_close_batch(s, token, batch), 200);
    json_t *b = it_wait_batch(s, token, batch, 120000);
    assert_non_null(b);
    if (it_json_int(b, "accepted") != accepted) {
        char *t = json_dumps(b, JSON_COMPACT);
        fprintf(stderr, "batch: %s\n", t ? t : "?");
        free(t);
    }
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "accepted"), accepted);
    json_decref(b);
}

void it_add_files(it_server *s, const char *token, int64_t project, const char *batch_name,
                  const char *const *names, int n)
{
    int64_t batch = it_create_batch(s, token, project, batch_name, NULL);
    assert_true(batch > 0);
    for (int i = 0; i < n; i++) {
        char path[4096];
        it_response r;
        assert_int_equal(it_upload_file(s, token, batch, names[i],
                                        it_test_data(names[i], path, sizeof path), &r),
                         0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
    }
    it_finish_batch(s, token, batch, n);
}

void it_add_jpegs(it_server *s, const char *token, int64_t project, const char *label,
                  const char *prefix, int n, int first)
{
    size_t len;
    unsigned char *base = it_load_test_data("photo.jpg", &len);
    assert_non_null(base);
    int64_t batch = it_create_batch(s, token, project, "jpegs", NULL);
    assert_true(batch > 0);
    for (int i = 0; i < n; i++) {
        size_t vl;
        unsigned char *v = it_jpeg_variant(base, len, label, first + i, &vl);
        char name[64];
        snprintf(name, sizeof name, "%s%04d.jpg", prefix, first + i);
        it_response r;
        assert_int_equal(it_upload_bytes(s, token, batch, name, v, vl, &r), 0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
        free(v);
    }
    free(base);
    it_finish_batch(s, token, batch, n);
}

json_t *it_next_task(it_server *s, const char *tok, int64_t project)
{
    it_response r;
    assert_int_equal(it_requestf(s, "POST", tok, NULL, &r, "/v1/projects/%lld/work/next",
                                 (long long)project),
                     0);
    if (r.status != 204)
        IT_ASSERT_STATUS(r, 200);
    json_t *task = NULL;
    if (r.status == 200) {
        assert_non_null(r.json);
        task = json_incref(r.json);
        assert_true(it_json_int(task, "assignment_id") > 0);
        assert_true(it_json_int(json_object_get(task, "item"), "id") > 0);
    } else {
        assert_int_equal(r.len, 0); /* 204: no body */
    }
    it_response_free(&r);
    return task;
}

int64_t it_take(it_server *s, const char *tok, int64_t project, int64_t *item)
{
    json_t *t = it_next_task(s, tok, project);
    if (!t)
        fprintf(stderr, "expected a task from project %lld, got 204\n", (long long)project);
    assert_non_null(t);
    int64_t a = it_json_int(t, "assignment_id");
    if (item)
        *item = it_json_int(json_object_get(t, "item"), "id");
    json_decref(t);
    return a;
}

int it_run_cli_va(it_server *s, const char *token, const char *input, char **out, char **err,
                  va_list ap)
{
    const char *args[32];
    size_t n = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31)
        args[n++] = a;
    args[n] = NULL;
    int rc = input ? it_run_cli_input(s, token, args, input, out, err)
                   : it_run_cli(s, token, args, out, err);
    if (rc != 0 || getenv("IT_VERBOSE")) /* help whoever reads a failure */
        fprintf(stderr, "cli %s -> %d\nstdout:\n%s\nstderr:\n%s\n", args[0] ? args[0] : "", rc,
                out && *out ? *out : "", err && *err ? *err : "");
    return rc;
}

json_t *it_json_requestf(it_server *s, const char *method, const char *token, const char *body, long status,
                         const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    it_response r;
    assert_int_equal(it_request_json(s, method, path, token, body, &r), 0);
    IT_ASSERT_STATUS(r, status);
    json_t *j = r.json ? json_incref(r.json) : NULL;
    it_response_free(&r);
    return j;
}

void it_release_all(it_server *s, const char *mgr, int64_t project, int n)
{
    long long deadline = it_now_ms() + 60000;   /* the aggregation job under ASan on a busy VM */
    for (;;) {
        json_t *res = it_json_requestf(s, "GET", mgr, NULL, 200, "/v1/projects/%lld/results?state=done&limit=200",
                                       (long long)project);
        size_t have = json_array_size(json_object_get(res, "items"));
        json_decref(res);
        if ((int)have == n)
            break;
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
    json_t *lot = it_json_requestf(s, "POST", mgr, "{\"seed\":1}", 201, "/v1/projects/%lld/acceptance", (long long)project);
    json_t *verdicts = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(lot, "sample"), i, v)
        json_array_append_new(verdicts, json_pack("{s:I,s:s}", "item_id", (json_int_t)it_json_int(v, "item_id"),
                                                  "verdict", "ok"));
    int64_t lot_id = it_json_int(lot, "id");
    json_decref(lot);
    json_t *body = json_pack("{s:o}", "verdicts", verdicts);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    lot = it_json_requestf(s, "POST", mgr, text, 200, "/v1/lots/%lld/verdicts", (long long)lot_id);
    free(text);
    assert_string_equal(it_json_str(lot, "state"), "accepted");
    json_decref(lot);
}
