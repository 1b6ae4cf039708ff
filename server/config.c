/* config.c -- tallyd's command line.
 *
 * Flags only (no config file yet): everything an operator sets is visible in the
 * process list and the unit file. Sizes accept K/M/G suffixes.
 */
#include "server/app.h"
#include "core/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tallyd [options]\n"
            "       tallyd migrate [--db URL | --data DIR]   apply schema migrations and exit\n"
            "       tallyd copy --from URL --to URL          copy a store into an empty one, verified\n"
            "                                                (tallyd copy --help)\n"
            "  --data DIR            data directory (default ./var): tally.db, blobs/, spool/, admin.token\n"
            "  --listen HOST:PORT    address to serve HTTP on (default 127.0.0.1:8080; port 0 = any free port,\n"
            "                        written to DATA/tallyd.addr)\n"
            "  --db URL              metadata store (default sqlite:DATA/tally.db; or\n"
            "                        postgresql://USER@HOST/DB?..., any libpq URL)\n"
            "  --blobs URL           blob store (default file:DATA/blobs), or\n"
            "                        s3://BUCKET[/PREFIX]?endpoint=URL&region=R (AWS_* credentials)\n"
            "  --media-redirect SECS item media answers 302 to a presigned S3 URL valid SECS\n"
            "                        (default 0: this node streams the bytes)\n"
            "  --import-root DIR     allow server-side imports from DIR (repeatable, up to %d)\n"
            "  --job-threads N       background job threads (default: twice the number of cores;\n"
            "                        0: serve HTTP only and leave the jobs to other nodes)\n"
            "  --job-lease SECS      a running job's lease (default 60), renewed every SECS/4 while\n"
            "                        it runs; a dead node's jobs are taken over after at most SECS\n"
            "  --http-threads N      serve HTTP from a pool of N threads (default 0: a thread per\n"
            "                        connection, so a request waiting for the disk holds up no other)\n"
            "  --max-connections N   most simultaneous HTTP connections (default 1024)\n"
            "  --max-body SIZE       largest JSON request body (default 16M)\n"
            "  --max-file-size SIZE  largest ingested file (default 512M)\n"
            "  --public-url URL      how model servers reach this tallyd's media (default\n"
            "                        http://HOST:PORT of --listen)\n"
            "  --url-allow-private   let URL-list ingest fetch from loopback, private and\n"
            "                        link-local addresses (refused by default)\n"
            "  --web DIR             the browser client served under /app/ (default: the source\n"
            "                        tree's web/ folder this tallyd was built from)\n"
            "  --log-level LEVEL     debug, info, warn or error (default info)\n"
            "  --version, --help\n",
            MAX_IMPORT_ROOTS);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    if (*end || v == 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_listen(const char *s, tly_config *cfg)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof cfg->listen_host)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "%.*s", (int)(colon - s), s);
    cfg->listen_port = (int)port;
    return 0;
}

int tly_config_parse(int argc, char **argv, tly_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./var");
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    /* Two per core: a job spends part of its time waiting for fsync, and a second
     * thread per core keeps the core decoding meanwhile. */
    cfg->job_threads = cores > 0 ? 2 * (int)cores : 4;
    cfg->http_threads = 0;   /* a thread per connection (see http.c) */
    cfg->max_connections = 1024;
    cfg->job_lease_s = 60;
    cfg->max_json_body = 16u << 20;
    cfg->max_file_size = 512ull << 20;
    cfg->log_level = TLY_LOG_INFO;
#ifdef TALLY_WEB_DIR
    snprintf(cfg->web_root, sizeof cfg->web_root, "%s", TALLY_WEB_DIR);
#endif

    enum { O_DATA = 1, O_LISTEN, O_DB, O_BLOBS, O_ROOT, O_JOBS, O_HTTP, O_BODY, O_FILE, O_LOG, O_VER, O_HELP, O_PRIVATE, O_MAXCONN, O_PUBLIC, O_WEB, O_REDIRECT, O_LEASE };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},          {"listen", required_argument, 0, O_LISTEN},
        {"db", required_argument, 0, O_DB},              {"blobs", required_argument, 0, O_BLOBS},
        {"import-root", required_argument, 0, O_ROOT},   {"job-threads", required_argument, 0, O_JOBS},
        {"http-threads", required_argument, 0, O_HTTP},  {"max-body", required_argument, 0, O_BODY},
        {"max-file-size", required_argument, 0, O_FILE}, {"log-level", required_argument, 0, O_LOG},
        {"version", no_argument, 0, O_VER},              {"help", no_argument, 0, O_HELP},
        {"url-allow-private", no_argument, 0, O_PRIVATE}, {"max-connections", required_argument, 0, O_MAXCONN},
        {"public-url", required_argument, 0, O_PUBLIC},  {"web", required_argument, 0, O_WEB},
        {"media-redirect", required_argument, 0, O_REDIRECT},
        {"job-lease", required_argument, 0, O_LEASE},
        {0, 0, 0, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t size;
        tly_log_level level;
        switch (c) {
        case O_DATA:
            snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", optarg);
            break;
        case O_LISTEN:
            if (parse_listen(optarg, cfg) < 0) {
                fprintf(stderr, "tallyd: --listen wants HOST:PORT, got '%s'\n", optarg);
                return -1;
            }
            break;
        case O_DB:
            snprintf(cfg->db_url, sizeof cfg->db_url, "%s", optarg);
            break;
        case O_BLOBS:
            snprintf(cfg->blobs_url, sizeof cfg->blobs_url, "%s", optarg);
            break;
        case O_ROOT:
            if (cfg->n_import_roots == MAX_IMPORT_ROOTS || optarg[0] != '/') {
                fprintf(stderr, "tallyd: --import-root wants an absolute directory (at most %d)\n", MAX_IMPORT_ROOTS);
                return -1;
            }
            cfg->import_roots[cfg->n_import_roots++] = optarg;
            break;
        case O_JOBS:
        case O_HTTP: {
            /* --job-threads 0: a node that serves HTTP and leaves jobs to others. */
            int n = atoi(optarg);
            if (n < 0 || n > 256) {
                fprintf(stderr, "tallyd: --job-threads and --http-threads must be 0..256\n");
                return -1;
            }
            *(c == O_JOBS ? &cfg->job_threads : &cfg->http_threads) = n;
            break;
        }
        case O_BODY:
        case O_FILE:
            if (parse_size(optarg, &size) < 0) {
                fprintf(stderr, "tallyd: bad size '%s' (e.g. 512M)\n", optarg);
                return -1;
            }
            if (c == O_BODY)
                cfg->max_json_body = (size_t)size;
            else
                cfg->max_file_size = size;
            break;
        case O_LOG:
            if (tly_log_parse_level(optarg, &level) < 0) {
                fprintf(stderr, "tallyd: --log-level is debug, info, warn or error\n");
                return -1;
            }
            cfg->log_level = (int)level;
            break;
        case O_MAXCONN: {
            int n = atoi(optarg);
            if (n < 1 || n > 100000) {
                fprintf(stderr, "tallyd: --max-connections must be 1..100000\n");
                return -1;
            }
            cfg->max_connections = n;
            break;
        }
        case O_PRIVATE:
            cfg->url_allow_private = 1;
            break;
        case O_REDIRECT: {
            int n = atoi(optarg);
            if (n < 0 || n > 604800) {
                fprintf(stderr, "tallyd: --media-redirect must be 0..604800 seconds\n");
                return -1;
            }
            cfg->media_redirect_s = n;
            break;
        }
        case O_LEASE: {
            /* At least 2 s: the heartbeat renews at a quarter of the lease. */
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || end == optarg || n < 2 || n > 86400) {
                fprintf(stderr, "tallyd: --job-lease must be 2..86400 seconds\n");
                return -1;
            }
            cfg->job_lease_s = (int)n;
            break;
        }
        case O_PUBLIC:
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, "tallyd: --public-url must start with http:// or https://\n");
                return -1;
            }
            snprintf(cfg->public_url, sizeof cfg->public_url, "%s", optarg);
            break;
        case O_WEB:
            snprintf(cfg->web_root, sizeof cfg->web_root, "%s", optarg);
            break;
        case O_VER:
            printf("tallyd %s\n", TALLY_VERSION);
            return 1;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tallyd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}
