/* copy_cmd.c -- `tallyd copy --from URL --to URL`: moves an install to other stores.
 *
 * The use is moving a single-node install (SQLite in DATA/tally.db) to the cluster
 * setup (PostgreSQL) without loss. All the work is tly_store_copy (storage/
 * store_copy.c): the target is migrated and must be empty (or --overwrite), every
 * table is copied in pages with its ids, and then each table's row count and
 * checksum are compared between the two sides. This file only parses the command
 * line and prints one line per table as it is done, and a summary; the exit status
 * is 0 only when every table matches. With --blobs-to, the blobs follow
 * (tly_blob_copy, storage/blob_copy.c: what the target lacks, each checked against
 * its name), after the tables, so a failed table copy never starts the long part.
 *
 * Store URLs are never printed (a PostgreSQL URL may hold a password): the backends'
 * names are. Without --blobs-to blobs are not copied: they are content-addressed
 * files (DATA/blobs/ab/<sha256>), so any tool that copies a directory tree to the S3
 * bucket does it as well, and a blob copied twice is the same blob.
 */
#include "server/copy_cmd.h"

#include "core/log.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tallyd copy (--from URL | --from-data DIR) [--to URL [--overwrite]]\n"
            "                   [--blobs-from URL] [--blobs-to URL]\n"
            "  --from URL        the store to copy (e.g. sqlite:/var/lib/tally/tally.db)\n"
            "  --from-data DIR   the same as --from sqlite:DIR/tally.db --blobs-from file:DIR/blobs\n"
            "  --to URL          the store to fill (e.g. postgresql://tally@db/tally); it is\n"
            "                    migrated first and must hold no rows\n"
            "  --overwrite       delete every row of the target first instead of refusing\n"
            "  --blobs-from URL  the blob store to copy (a local one: file:DIR)\n"
            "  --blobs-to URL    put the blobs it lacks into this blob store (e.g. s3://...)\n"
            "  --log-level LEVEL debug, info, warn or error (default warn)\n"
            "Copies every table with its ids, then compares row counts and checksums of\n"
            "every table on both sides; then, with --blobs-to, the blobs (each checked\n"
            "against its SHA-256 name; those already there are skipped). Exits 0 only if\n"
            "every table matches and no blob failed. Stop tallyd first.\n");
}

static void print_table(const tly_store_copy_table *t, void *arg)
{
    (void)arg;
    if (t->match) {
        printf("  %-22s %10lld rows  checksum %.16s  ok\n", t->name, (long long)t->source_rows, t->source_checksum);
    } else {
        printf("  %-22s MISMATCH: source %lld rows checksum %.16s, target %lld rows checksum %.16s\n", t->name,
               (long long)t->source_rows, t->source_checksum, (long long)t->target_rows, t->target_checksum);
    }
    fflush(stdout);
}

/* Opening a SQLite store creates a missing file: a mistyped --from would then copy
 * an empty store "successfully". 0 if from is not SQLite or its file exists. */
static int check_source_exists(const char *from)
{
    const char *path = strncmp(from, "sqlite:", 7) == 0 ? from + 7 : strstr(from, "://") ? NULL : from;
    if (!path || access(path, F_OK) == 0)
        return 0;
    fprintf(stderr, "tallyd copy: no source database at %s\n", path);
    return -1;
}

/* The tables: one line each, a summary; the exit status. */
static int copy_store(const char *from, const char *to, const tly_store_copy_options *opt)
{
    tly_error err;
    tly_store *src = NULL, *dst = NULL;
    static tly_store_copy_report rep;   /* ~10 KB: not on the stack */
    if (check_source_exists(from) < 0)
        return 1;
    if (tly_store_open(from, &src, &err) < 0) {
        fprintf(stderr, "tallyd copy: cannot open the source: %s\n", err.message);
        return 1;
    }
    if (tly_store_open(to, &dst, &err) < 0) {
        fprintf(stderr, "tallyd copy: cannot open the target: %s\n", err.message);
        tly_store_close(src);
        return 1;
    }
    printf("copying the %s store into the %s store\n", tly_store_backend_name(src), tly_store_backend_name(dst));
    fflush(stdout);
    int rc = tly_store_copy(src, dst, opt, &rep, &err);
    tly_store_close(dst);
    tly_store_close(src);
    if (rc < 0 && strcmp(err.code, "copy_mismatch") == 0) {
        fprintf(stderr, "tallyd copy: FAILED: %d of %zu tables differ between source and target (lines marked "
                        "MISMATCH); the target is not a faithful copy\n",
                rep.mismatches, rep.n_tables);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "tallyd copy: %s%s\n", err.message,
                strcmp(err.code, "target_not_empty") == 0 ? " (--overwrite)" : "");
        return 1;
    }
    printf("copied %zu tables, %lld rows: row counts and checksums match on every table\n", rep.n_tables,
           (long long)rep.rows);
    return 0;
}

/* The blobs the target lacks; a summary line; the exit status. */
static int copy_blobs(const char *from, const char *to)
{
    tly_error err;
    tly_blob_store *src = NULL, *dst = NULL;
    if (tly_blob_open(from, &src, &err) < 0) {
        fprintf(stderr, "tallyd copy: cannot open the source blob store: %s\n", err.message);
        return 1;
    }
    if (tly_blob_open(to, &dst, &err) < 0) {
        fprintf(stderr, "tallyd copy: cannot open the target blob store: %s\n", err.message);
        tly_blob_close(src);
        return 1;
    }
    printf("copying the %s blob store into the %s blob store\n", tly_blob_backend_name(src),
           tly_blob_backend_name(dst));
    fflush(stdout);
    tly_blob_copy_report rep;
    int rc = tly_blob_copy(src, dst, &rep, &err);
    tly_blob_close(dst);
    tly_blob_close(src);
    printf("blobs: %lld copied (%llu bytes), %lld already there, %lld failed\n", (long long)rep.copied,
           (unsigned long long)rep.bytes, (long long)rep.skipped, (long long)rep.failed);
    if (rc < 0) {
        fprintf(stderr, "tallyd copy: blobs: %s\n", err.message);
        return 1;
    }
    return 0;
}

int tly_copy_main(int argc, char **argv)
{
    enum { O_FROM = 1, O_FROM_DATA, O_TO, O_OVERWRITE, O_LOG, O_HELP, O_BLOBS_FROM, O_BLOBS_TO };
    static const struct option opts[] = {
        {"from", required_argument, 0, O_FROM},       {"from-data", required_argument, 0, O_FROM_DATA},
        {"to", required_argument, 0, O_TO},           {"overwrite", no_argument, 0, O_OVERWRITE},
        {"log-level", required_argument, 0, O_LOG},   {"help", no_argument, 0, O_HELP},
        {"blobs-from", required_argument, 0, O_BLOBS_FROM}, {"blobs-to", required_argument, 0, O_BLOBS_TO},
        {0, 0, 0, 0},
    };
    char from[PATH_MAX + 16] = "", blobs_from[PATH_MAX + 16] = "";
    const char *to = NULL, *blobs_to = NULL;
    tly_store_copy_options opt = {.on_table = print_table};
    tly_log_level level = TLY_LOG_WARN;   /* migration notes would interleave with the table lines */
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_FROM:
            snprintf(from, sizeof from, "%s", optarg);
            break;
        case O_FROM_DATA:
            snprintf(from, sizeof from, "sqlite:%s/tally.db", optarg);
            if (!blobs_from[0])
                snprintf(blobs_from, sizeof blobs_from, "file:%s/blobs", optarg);
            break;
        case O_BLOBS_FROM:
            snprintf(blobs_from, sizeof blobs_from, "%s", optarg);
            break;
        case O_BLOBS_TO:
            blobs_to = optarg;
            break;
        case O_TO:
            to = optarg;
            break;
        case O_OVERWRITE:
            opt.overwrite = 1;
            break;
        case O_LOG:
            if (tly_log_parse_level(optarg, &level) < 0) {
                fprintf(stderr, "tallyd copy: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((!to && !blobs_to) || (to && !from[0]) || (blobs_to && !blobs_from[0]) || optind < argc) {
        usage(stderr);
        return 2;
    }
    tly_log_set_level(level);
    int rc = to ? copy_store(from, to, &opt) : 0;
    if (rc == 0 && blobs_to)
        rc = copy_blobs(blobs_from, blobs_to);
    else if (rc == 0)
        printf("blobs were not copied: --blobs-to URL, or copy DATA/blobs to the new blob store with any tool\n");
    return rc;
}
