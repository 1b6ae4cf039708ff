/* store_work.c -- crowd work: leasing items to workers and recording judgments.
 *
 * Dispatch decides inside one write transaction, so two workers can never both
 * take an item's last free slot: on SQLite because writers are serialised, on
 * PostgreSQL -- where the combiners of several nodes run at once -- because every
 * decision is taken on locked rows (the worker's, the item's; see dispatch_in_tx). The search
 * itself is optimistic: it runs first outside the transaction, on a snapshot that
 * blocks no writer, and the transaction only re-checks that one candidate (a few
 * index lookups) before leasing it; only if another worker took it meanwhile does
 * the transaction search again. The write lock is thus held for microseconds, not
 * for a scan, which is what bounds dispatch throughput. An item's free slots are
 * overlap - judged - (unexpired leases): a lease that expired stops counting the
 * moment it expires, so correctness never waits for a sweep. The search walks two
 * index-ordered lists and stops at the first eligible item:
 *   1. items in state 'labeling' by judged descending (closest to completion first),
 *      then batch, then id -- a short list, bounded by the leases in flight;
 *   2. items in state 'new' by batch, then id.
 * Items move new -> labeling (first lease) -> labeled (overlap judgments reached).
 *
 * Write combining: the decisive transactions of dispatch and submit do not run on
 * the requesting threads. They are queued to one combiner thread, which runs every
 * queued operation in a single transaction, each inside its own savepoint (so one
 * failing operation is undone alone), commits once, waits once for the disk, and
 * wakes the requesters. Under many concurrent workers this replaces hundreds of
 * small transactions -- each paying BEGIN's locks, COMMIT's WAL writes and a
 * thread-to-thread handoff of the write lock -- with a few large ones.
 *
 * Row locks never wait (NOWAIT, or SKIP LOCKED for a search), so combiners on
 * different nodes cannot deadlock; an operation that meets a row another node holds
 * is undone to its savepoint and runs again in the next batch (take_retries).
 *
 * A judgment is recorded in the same transaction that checks its lease, marks the
 * assignment submitted and bumps the item's count, so an acknowledged judgment is
 * never half there, and the UNIQUE assignment_id makes a second one impossible.
 */
#include "storage/sql.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ASSIGNMENT_COLS \
    "a.id, a.project_id, a.item_id, a.worker_id, a.state, a.mode, a.leased_at, a.expires_at," \
    " a.finished_at, COALESCE(j.id, 0), a.gold"
#define ASSIGNMENT_FROM " FROM assignments a LEFT JOIN judgments j ON j.assignment_id = a.id "

static int read_assignment(const sq_row *r, void *ctx, tly_error *err)
{
    tly_assignment *a = ctx;
    a->id = sq_col_i64(r, 0);
    a->project_id = sq_col_i64(r, 1);
    a->item_id = sq_col_i64(r, 2);
    a->worker_id = sq_col_i64(r, 3);
    sq_col_copy(r, 4, a->state, sizeof a->state);
    sq_col_copy(r, 5, a->mode, sizeof a->mode);
    a->leased_at = sq_col_i64(r, 6);
    a->expires_at = sq_col_i64(r, 7);
    a->finished_at = sq_col_i64(r, 8);
    a->judgment_id = sq_col_i64(r, 9);
    a->gold = (int)sq_col_i64(r, 10);
    return 0;
}

static void clear_nothing(void *rec)
{
    (void)rec;
}

int tly_store_assignment_get(tly_store *st, int64_t id, tly_assignment *out, tly_error *err)
{
    return sq_one(st, "SELECT " ASSIGNMENT_COLS ASSIGNMENT_FROM "WHERE a.id = ?", read_assignment,
                  clear_nothing, out, sizeof *out, "assignment", err, "i", id);
}

/* Never an item the worker had before: ?1 worker. */
#define UNSEEN " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.worker_id = ?)"
/* The free-slot test shared by both searches: ?1 worker, ?2 now, ?3 overlap. */
#define ELIGIBLE                                                                              \
    UNSEEN                                                                                    \
    " AND i.judged + (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id"               \
    "   AND a.state = 'leased' AND a.expires_at > ?) < ? + i.extra"

/* The two searches (labeling, then new) and the gold pick; ?s as in pick_item. */
#define PICK_LABELING                                                                         \
    "SELECT i.id FROM items i WHERE i.project_id = ? AND i.state = 'labeling'"                \
    " AND i.judged < ? + i.extra" ELIGIBLE " ORDER BY i.judged DESC, i.batch_id, i.id LIMIT 1"
#define PICK_NEW                                                                              \
    "SELECT i.id FROM items i WHERE i.project_id = ? AND i.state = 'new'" ELIGIBLE             \
    " ORDER BY i.priority, i.batch_id, i.id LIMIT 1"
#define PICK_GOLD                                                                             \
    "SELECT i.id FROM items i WHERE i.project_id = ? AND i.state = 'gold'" UNSEEN              \
    " ORDER BY (i.id * 2654435761 + ?) % 1000003, i.id LIMIT 1"

/* Statements that lock rows, built once per store with the driver's row-lock
 * suffixes; NULL fields when the driver needs no row locks (st->work_sql NULL). */
struct sq_work_sql {
    char *lock_worker;       /* the worker's users row: one decision per worker at a time */
    char *get_assignment;    /* an assignment, its row locked, before its submission is checked */
    char *lock_item;         /* an item's row, before its count changes */
    char *try_item;          /* the same, skipping (no row) when another holds it */
    char *pick_labeling, *pick_new;   /* the searches, skipping items others hold */
};

void sq_work_sql_free(struct sq_work_sql *w)
{
    if (!w)
        return;
    free(w->lock_worker);
    free(w->get_assignment);
    free(w->lock_item);
    free(w->try_item);
    free(w->pick_labeling);
    free(w->pick_new);
    free(w);
}

/* sql, then the driver's row lock, then tail ("NOWAIT", "SKIP LOCKED", "OF a NOWAIT"). */
static char *locking(const char *sql, const char *lock, const char *tail)
{
    size_t n = strlen(sql) + strlen(lock) + strlen(tail) + 3;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s %s %s", sql, lock, tail);
    return out;
}

int sq_work_sql_build(tly_store *st)
{
    const char *lock = st->drv->row_lock;
    if (!lock)
        return 0;
    struct sq_work_sql *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    /* NOWAIT: a combiner never waits for a row, so combiners never deadlock; one
     * that finds a row taken runs that operation again in its next batch. */
    w->lock_worker = locking("SELECT id FROM users WHERE id = ?", lock, "NOWAIT");
    /* OF a: the judgment side of the outer join is not locked (and need not be). */
    w->get_assignment = locking("SELECT " ASSIGNMENT_COLS ASSIGNMENT_FROM "WHERE a.id = ?", lock, "OF a NOWAIT");
    w->lock_item = locking("SELECT id FROM items WHERE id = ?", lock, "NOWAIT");
    w->try_item = locking("SELECT id FROM items WHERE id = ?", lock, "SKIP LOCKED");
    w->pick_labeling = locking(PICK_LABELING, lock, "SKIP LOCKED");
    w->pick_new = locking(PICK_NEW, lock, "SKIP LOCKED");
    if (!w->lock_worker || !w->get_assignment || !w->lock_item || !w->try_item || !w->pick_labeling ||
        !w->pick_new) {
        sq_work_sql_free(w);
        return -1;
    }
    st->work_sql = w;
    return 0;
}

/* Locks one row with a row_lock statement: 0 locked (or no such row: the caller's
 * next read reports that), -1 error -- BUSY "row_locked" when another transaction
 * holds it, which the combiner answers by running the operation again. */
static int lock_row(tly_store *st, const char *sql, int64_t id, tly_error *err)
{
    return sq_int64(st, sql, NULL, err, "i", id) < 0 ? -1 : 0;
}

/* locked: inside a combiner transaction on a driver with row locks, where the
 * search locks what it returns (skipping rows that others hold). */
static int pick_item(tly_store *st, int64_t project_id, int64_t worker_id,
                     const tly_dispatch_rules *rules, int64_t now, int locked, int64_t *item_id,
                     tly_error *err)
{
    if (rules->gold)   /* a test question: any number of workers at once, each once */
        return sq_int64(st, PICK_GOLD, item_id, err, "iii", project_id, worker_id, worker_id * 40503);
    int rc = sq_int64(st, locked ? st->work_sql->pick_labeling : PICK_LABELING, item_id, err, "iiiii", project_id,
                      (int64_t)rules->overlap, worker_id, now, (int64_t)rules->overlap);
    if (rc != 1)
        return rc;
    return sq_int64(st, locked ? st->work_sql->pick_new : PICK_NEW, item_id, err, "iiii", project_id, worker_id, now,
                    (int64_t)rules->overlap);
}

/* The worker's unexpired lease in the project, if any: 0 found, 1 none, -1 error. */
static int held_lease(tly_store *st, int64_t project_id, int64_t worker_id, int64_t now,
                      tly_assignment *out, tly_error *err)
{
    tly_error e;
    /* MIN(id) in a subquery rather than ORDER BY a.id LIMIT 1: the index range
     * (worker, project, state, expires_at) is not in id order, so the ORDER BY made
     * SQLite open a temporary b-tree to sort the (usually zero or one) rows -- a
     * pager opened and closed twice per dispatch. Same row either way. */
    if (sq_one(st,
               "SELECT " ASSIGNMENT_COLS ASSIGNMENT_FROM
               "WHERE a.id = (SELECT MIN(id) FROM assignments WHERE worker_id = ? AND project_id = ?"
               " AND state = 'leased' AND expires_at > ?)",
               read_assignment, clear_nothing, out, sizeof *out, "assignment", &e, "iii", worker_id, project_id,
               now) == 0)
        return 0;
    if (e.status == TLY_E_NOT_FOUND)
        return 1;
    if (err)
        *err = e;
    return -1;
}

/* 1 if the worker's cap is reached, 0 if not, -1 on error. */
static int capped(tly_store *st, int64_t project_id, int64_t worker_id, const tly_dispatch_rules *rules,
                  int64_t now, tly_error *err)
{
    if (rules->per_worker_cap <= 0)
        return 0;
    int64_t used = 0;
    if (sq_int64(st,
                 "SELECT COUNT(*) FROM assignments WHERE worker_id = ? AND project_id = ?"
                 " AND (state = 'submitted' OR (state = 'leased' AND expires_at > ?))",
                 &used, err, "iii", worker_id, project_id, now) < 0)
        return -1;
    return used >= rules->per_worker_cap;
}

/* 1 if item_id is still eligible for the worker, 0 if not, -1 on error. */
static int still_eligible(tly_store *st, int64_t item_id, int64_t worker_id, const tly_dispatch_rules *rules,
                          int64_t now, tly_error *err)
{
    int rc = rules->gold ? sq_int64(st, "SELECT i.id FROM items i WHERE i.id = ? AND i.state = 'gold'" UNSEEN, NULL,
                                    err, "ii", item_id, worker_id)
                         : sq_int64(st,
                                    "SELECT i.id FROM items i WHERE i.id = ? AND i.state IN ('new', 'labeling')"
                                    " AND i.judged < ? + i.extra" ELIGIBLE,
                                    NULL, err, "iiiii", item_id, (int64_t)rules->overlap, worker_id, now,
                                    (int64_t)rules->overlap);
    return rc < 0 ? -1 : rc == 0;
}

static int lease(tly_store *st, int64_t project_id, int64_t worker_id, int64_t item_id,
                 const tly_dispatch_rules *rules, int64_t now, tly_assignment *out, tly_error *err)
{
    int64_t id = 0;
    const char *mode = rules->mode ? rules->mode : "work";
    if (sq_insert(st,
                  "INSERT INTO assignments (project_id, item_id, worker_id, state, mode, gold, leased_at,"
                  " expires_at) VALUES (?, ?, ?, 'leased', ?, ?, ?, ?) RETURNING id",
                  &id, err, "iiitiii", project_id, item_id, worker_id, mode, (int64_t)(rules->gold != 0), now,
                  now + rules->lease_ms) < 0 ||
        sq_exec(st, "UPDATE items SET state = 'labeling' WHERE id = ? AND state = 'new'", err, "i", item_id) < 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->id = id;
    out->project_id = project_id;
    out->item_id = item_id;
    out->worker_id = worker_id;
    strcpy(out->state, "leased");
    snprintf(out->mode, sizeof out->mode, "%s", mode);
    out->gold = rules->gold != 0;
    out->leased_at = now;
    out->expires_at = now + rules->lease_ms;
    return 0;
}

/* Inside the write transaction: everything is re-checked, so the outcome is as if
 * the whole search had run here; candidate (0 = none) only saves the search.
 *
 * With row locks (PostgreSQL: the combiners of several nodes run at once), every
 * decision is taken on locked rows and read by a statement that started after the
 * lock was granted -- under READ COMMITTED such a statement sees everything the
 * previous holder committed. The worker's row guards the per-worker rules (one
 * lease per project, the cap, never the same item twice); the item's row guards its
 * free slots. A search locks what it returns and skips items other transactions
 * hold; since its own eligibility subqueries ran on the snapshot taken before the
 * lock, the item is checked once more after it. */
static int dispatch_in_tx(tly_store *st, int64_t project_id, int64_t worker_id,
                          const tly_dispatch_rules *rules, int64_t now, int64_t candidate,
                          tly_assignment *out, tly_error *err)
{
    const struct sq_work_sql *w = st->work_sql;
    if (w && lock_row(st, w->lock_worker, worker_id, err) < 0)
        return -1;
    int rc = held_lease(st, project_id, worker_id, now, out, err);   /* asked again: same task */
    if (rc <= 0)
        return rc;
    if ((rc = capped(st, project_id, worker_id, rules, now, err)) != 0)
        return rc < 0 ? -1 : 1;
    if (candidate && w && !rules->gold) {
        int64_t got = 0;
        if ((rc = sq_int64(st, w->try_item, &got, err, "i", candidate)) < 0)
            return -1;
        if (rc == 1)
            candidate = 0;   /* another transaction is deciding on it: look elsewhere */
    }
    if (candidate && (rc = still_eligible(st, candidate, worker_id, rules, now, err)) != 1) {
        if (rc < 0)
            return -1;
        candidate = 0;   /* taken meanwhile: search again, under the lock this time */
    }
    /* Each stale find was taken meanwhile and committed; the next search's snapshot
     * sees that, so it moves on. A few rounds, then let the combiner retry. */
    for (int round = 0; !candidate; round++) {
        if (round == 4)
            return tly_fail(err, TLY_E_BUSY, "row_locked", "dispatch: items kept changing under the search");
        if ((rc = pick_item(st, project_id, worker_id, rules, now, w != NULL, &candidate, err)) < 0)
            return -1;
        if (rc == 1 && w && !rules->gold) {
            /* Nothing free that no one holds; if something is held, it may yet free
             * up (another node's lease rolled back): ask again rather than say no work. */
            int64_t held = 0;
            if ((rc = pick_item(st, project_id, worker_id, rules, now, 0, &held, err)) < 0)
                return -1;
            if (rc == 0)
                return tly_fail(err, TLY_E_BUSY, "row_locked", "dispatch: the free items are being decided on");
        }
        if (rc == 1)
            return 1;
        if (!w || rules->gold)
            break;
        if ((rc = still_eligible(st, candidate, worker_id, rules, now, err)) < 0)
            return -1;
        if (rc == 0)
            candidate = 0;
    }
    return lease(st, project_id, worker_id, candidate, rules, now, out, err);
}

/* CONFLICT unless a is a lease that is still running. */
static int check_leased(const tly_assignment *a, int64_t now, tly_error *err)
{
    if (strcmp(a->state, "submitted") == 0)
        return tly_fail(err, TLY_E_CONFLICT, "already_submitted", "assignment %lld was already submitted",
                        (long long)a->id);
    if (strcmp(a->state, "skipped") == 0)
        return tly_fail(err, TLY_E_CONFLICT, "assignment_skipped", "assignment %lld was skipped",
                        (long long)a->id);
    if (a->expires_at <= now)
        return tly_fail(err, TLY_E_CONFLICT, "lease_expired", "the lease of assignment %lld has expired",
                        (long long)a->id);
    return 0;
}

/* Queues the project's aggregation unless a run is already queued; run_after a
 * moment away, so that judgments arriving together are aggregated together. */
int sq_queue_aggregation(tly_store *st, int64_t project_id, int64_t now_ms, tly_error *err)
{
    return sq_exec(st,
                   "INSERT INTO jobs (kind, ref_id, state, run_after, created_at, updated_at)"
                   " SELECT 'aggregate', ?, 'queued', ?, ?, ? WHERE NOT EXISTS"
                   " (SELECT 1 FROM jobs WHERE kind = 'aggregate' AND ref_id = ? AND state = 'queued')",
                   err, "iiiii", project_id, now_ms + 200, now_ms, now_ms, project_id);
}

/* Counts a new judgment on its (work) item: labeled once it has overlap + extra. */
int sq_item_count_judgment(tly_store *st, int64_t project_id, int64_t item_id, int overlap, int64_t now_ms,
                           tly_error *err)
{
    int64_t labeled = 0;   /* RETURNING: one round trip, not an UPDATE and a SELECT */
    if (sq_int64(st,
                 "UPDATE items SET judged = judged + 1,"
                 " state = CASE WHEN judged + 1 >= ? + extra THEN 'labeled' ELSE 'labeling' END"
                 " WHERE id = ? AND state IN ('new', 'labeling') RETURNING state = 'labeled'",
                 &labeled, err, "ii", (int64_t)overlap, item_id) < 0)
        return -1;
    return labeled ? sq_queue_aggregation(st, project_id, now_ms, err) : 0;
}

static int judgment_in_tx(tly_store *st, int64_t assignment_id, const char *answer_json,
                          int64_t duration_ms, int overlap, int correct, int64_t now_ms, int64_t *judgment_id,
                          tly_error *err)
{
    /* With row locks: the assignment's row, then (a work item) the item's, before
     * anything is read that decides (see dispatch_in_tx). */
    const struct sq_work_sql *w = st->work_sql;
    tly_assignment a;
    if ((w ? sq_one(st, w->get_assignment, read_assignment, clear_nothing, &a, sizeof a, "assignment", err, "i",
                    assignment_id)
           : tly_store_assignment_get(st, assignment_id, &a, err)) < 0 ||
        check_leased(&a, now_ms, err) < 0 ||
        (w && !a.gold && lock_row(st, w->lock_item, a.item_id, err) < 0) ||
        sq_insert(st,
                  "INSERT INTO judgments (assignment_id, project_id, item_id, worker_id, answer, duration_ms,"
                  " created_at, gold, correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                  judgment_id, err, a.gold && correct >= 0 ? "iiiitiiii" : "iiiitiiin", a.id, a.project_id,
                  a.item_id, a.worker_id, answer_json, duration_ms, now_ms, (int64_t)a.gold, (int64_t)correct) < 0 ||
        sq_exec(st, "UPDATE assignments SET state = 'submitted', finished_at = ? WHERE id = ?", err, "ii",
                now_ms, a.id) < 0)
        return -1;
    /* A test question is judged for the worker's standing, not counted on the item. */
    return a.gold ? 0 : sq_item_count_judgment(st, a.project_id, a.item_id, overlap, now_ms, err);
}

/* ---- the write combiner ------------------------------------------------------------- */

typedef struct work_op {
    enum { OP_DISPATCH, OP_JUDGE } kind;
    /* in */
    int64_t project_id, worker_id, candidate, now;
    tly_dispatch_rules rules;
    int64_t assignment_id, duration_ms;
    const char *answer;
    int overlap, correct;
    /* out */
    int rc;
    tly_error err;
    tly_assignment out;
    int64_t judgment_id;
    sem_t done;              /* posted by the combiner once the outcome is in */
    int tries;               /* runs that failed on rows another transaction held */
    struct work_op *next;
} work_op;

struct sq_combiner {
    tly_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;
    work_op *head, *tail;
    int stop;
};

static int run_op(tly_store *st, work_op *op)
{
    if (op->kind == OP_DISPATCH)
        return dispatch_in_tx(st, op->project_id, op->worker_id, &op->rules, op->now, op->candidate, &op->out,
                              &op->err);
    return judgment_in_tx(st, op->assignment_id, op->answer, op->duration_ms, op->overlap, op->correct, op->now,
                          &op->judgment_id, &op->err);
}

/* One transaction for the whole list; a savepoint per operation. */
static void run_batch(tly_store *st, work_op *list)
{
    tly_error err;
    tly_sql_conn *c = sq_conn(st, &err);
    int begun = !c ? -1 : st->drv->begin_concurrent ? st->drv->begin_concurrent(c, &err) : st->drv->begin(c, &err);
    if (begun < 0) {
        for (work_op *op = list; op; op = op->next) {
            op->rc = -1;
            op->err = err;
        }
        return;
    }
    /* The end of one operation's savepoint and the start of the next go to the
     * database as one round trip. */
    int open = 0;
    for (work_op *op = list; op; op = op->next) {
        if (!open && st->drv->exec(c, "SAVEPOINT op", &op->err) < 0) {
            op->rc = -1;
            continue;
        }
        op->rc = run_op(st, op);
        const char *end = op->rc < 0 ? (op->next ? "ROLLBACK TO op; RELEASE op; SAVEPOINT op" : "ROLLBACK TO op; RELEASE op")
                                     : (op->next ? "RELEASE op; SAVEPOINT op" : "RELEASE op");
        tly_error ignore;
        open = st->drv->exec(c, end, &ignore) == 0 && op->next;
        /* A failure here leaves the transaction failed: its commit reports it. */
    }
    if (tly_store_commit(st, &err) < 0) {
        tly_store_rollback(st);
        for (work_op *op = list; op; op = op->next)
            if (op->rc >= 0) {
                op->rc = -1;
                op->err = err;
            }
    }
}

/* An operation that failed only because another node's transaction held a row it
 * needed (row_locked), or whose batch was chosen as a deadlock victim, is run again
 * in the next batch: the requester waits a little longer instead of getting a 503.
 * Not after a lost connection: the batch may have committed. */
#define RETRY_MAX 400

static int retry_worthy(work_op *op)
{
    return op->rc < 0 && op->err.status == TLY_E_BUSY &&
           (strcmp(op->err.code, "row_locked") == 0 || strcmp(op->err.code, "serialization_failure") == 0) &&
           op->tries++ < RETRY_MAX;
}

/* Moves the operations to run again out of *list (order kept) and returns them. */
static work_op *take_retries(work_op **list)
{
    work_op *again = NULL, **again_end = &again, **keep = list;
    while (*keep) {
        work_op *op = *keep;
        if (retry_worthy(op)) {
            *keep = op->next;
            op->next = NULL;
            op->rc = 0;
            memset(&op->err, 0, sizeof op->err);
            *again_end = op;
            again_end = &op->next;
        } else {
            keep = &op->next;
        }
    }
    return again;
}

static void retry_pause(void)
{
    struct timespec ts = {0, 300 * 1000};
    nanosleep(&ts, NULL);
}

static void *combiner_main(void *arg)
{
    struct sq_combiner *cb = arg;
    pthread_mutex_lock(&cb->mu);
    for (;;) {
        while (!cb->head && !cb->stop)
            pthread_cond_wait(&cb->work, &cb->mu);
        if (!cb->head)
            break;   /* stopping, and nothing left to do */
        work_op *list = cb->head;
        cb->head = cb->tail = NULL;
        pthread_mutex_unlock(&cb->mu);
        run_batch(cb->st, list);
        work_op *again = take_retries(&list);
        /* Wake exactly the requesters whose outcome is in, without the queue's
         * mutex. A broadcast on one shared condition woke every waiting requester
         * (up to one per connection) after each batch, only for most of them to
         * queue on the mutex and sleep again: under tools/bench/dispatch (64
         * workers) perf put ~12% of tallyd's CPU samples in that wait, ~4% after.
         * The op lives on its requester's stack and may be gone once posted, so
         * read next first. */
        for (work_op *op = list, *next; op; op = next) {
            next = op->next;
            sem_post(&op->done);
        }
        pthread_mutex_lock(&cb->mu);
        if (again) {   /* first in the next batch, in their order */
            int alone = !cb->head;
            work_op *last = again;
            while (last->next)
                last = last->next;
            last->next = cb->head;
            cb->head = again;
            if (!cb->tail)
                cb->tail = last;
            if (alone) {   /* give the holder of the rows a moment to commit */
                pthread_mutex_unlock(&cb->mu);
                retry_pause();
                pthread_mutex_lock(&cb->mu);
            }
        }
    }
    pthread_mutex_unlock(&cb->mu);
    return NULL;
}

static struct sq_combiner *combiner_get(tly_store *st)
{
    pthread_mutex_lock(&st->combiner_mu);
    if (!st->combiner) {
        struct sq_combiner *cb = calloc(1, sizeof *cb);
        if (cb) {
            cb->st = st;
            pthread_mutex_init(&cb->mu, NULL);
            pthread_cond_init(&cb->work, NULL);
            if (pthread_create(&cb->thread, NULL, combiner_main, cb) == 0) {
                st->combiner = cb;
            } else {
                pthread_mutex_destroy(&cb->mu);
                pthread_cond_destroy(&cb->work);
                free(cb);
            }
        }
    }
    struct sq_combiner *cb = st->combiner;
    pthread_mutex_unlock(&st->combiner_mu);
    return cb;
}

void sq_combiner_stop(tly_store *st)
{
    struct sq_combiner *cb = st->combiner;
    if (!cb)
        return;
    pthread_mutex_lock(&cb->mu);
    cb->stop = 1;
    pthread_cond_signal(&cb->work);
    pthread_mutex_unlock(&cb->mu);
    pthread_join(cb->thread, NULL);
    pthread_mutex_destroy(&cb->mu);
    pthread_cond_destroy(&cb->work);
    free(cb);
    st->combiner = NULL;
}

/* Runs op through the combiner and waits for its outcome; without a combiner (no
 * thread could be started) it runs in a transaction of its own. */
static int combine(tly_store *st, work_op *op, tly_error *err)
{
    struct sq_combiner *cb = combiner_get(st);
    if (cb && sem_init(&op->done, 0, 0) < 0)
        cb = NULL;   /* (cannot fail for a process-private semaphore) run it here */
    if (!cb) {
        for (;;) {
            op->next = NULL;
            run_batch(st, op);
            work_op *list = op;
            if (!take_retries(&list))
                break;
            retry_pause();
        }
    } else {
        pthread_mutex_lock(&cb->mu);
        op->next = NULL;
        if (cb->tail)
            cb->tail->next = op;
        else
            cb->head = op;
        cb->tail = op;
        pthread_cond_signal(&cb->work);
        pthread_mutex_unlock(&cb->mu);
        while (sem_wait(&op->done) < 0 && errno == EINTR)
            ;
        sem_destroy(&op->done);
    }
    if (op->rc < 0 && err)
        *err = op->err;
    return op->rc;
}

int tly_store_dispatch(tly_store *st, int64_t project_id, int64_t worker_id,
                       const tly_dispatch_rules *rules, int64_t now_ms, tly_assignment *out,
                       tly_error *err)
{
    /* Outside the transaction: the cheap answers first, then the search. */
    int rc = held_lease(st, project_id, worker_id, now_ms, out, err);
    if (rc <= 0)
        return rc;
    if ((rc = capped(st, project_id, worker_id, rules, now_ms, err)) != 0)
        return rc < 0 ? -1 : 1;
    int64_t candidate = 0;
    if ((rc = pick_item(st, project_id, worker_id, rules, now_ms, 0, &candidate, err)) < 0)
        return -1;
    if (rc == 1)
        return 1;   /* nothing eligible in the snapshot; a new item would make a new request */
    work_op op = {.kind = OP_DISPATCH, .project_id = project_id, .worker_id = worker_id,
                  .candidate = candidate, .now = now_ms, .rules = *rules};
    rc = combine(st, &op, err);
    if (rc == 0)
        *out = op.out;
    return rc;
}

int tly_store_judgment_add_here(tly_store *st, int64_t assignment_id, const char *answer_json,
                                int64_t duration_ms, int overlap, int correct, int64_t now_ms,
                                int64_t *judgment_id, tly_error *err)
{
    int64_t id = 0;
    if (judgment_in_tx(st, assignment_id, answer_json, duration_ms, overlap, correct, now_ms, &id, err) < 0)
        return -1;
    if (judgment_id)
        *judgment_id = id;
    return 0;
}

int tly_store_judgment_add(tly_store *st, int64_t assignment_id, const char *answer_json,
                           int64_t duration_ms, int overlap, int correct, int64_t now_ms,
                           int64_t *judgment_id, tly_error *err)
{
    work_op op = {.kind = OP_JUDGE, .assignment_id = assignment_id, .answer = answer_json,
                  .duration_ms = duration_ms, .overlap = overlap, .correct = correct, .now = now_ms};
    if (combine(st, &op, err) < 0)
        return -1;
    if (judgment_id)
        *judgment_id = op.judgment_id;
    return 0;
}

int tly_store_assignment_skip(tly_store *st, int64_t id, int64_t now_ms, tly_error *err)
{
    tly_assignment a;
    if (tly_store_assignment_get(st, id, &a, err) < 0)
        return -1;
    if (strcmp(a.state, "submitted") == 0)
        return tly_fail(err, TLY_E_CONFLICT, "already_submitted", "assignment %lld was already submitted",
                        (long long)id);
    return sq_exec(st, "UPDATE assignments SET state = 'skipped', finished_at = ? WHERE id = ? AND state = 'leased'",
                   err, "ii", now_ms, id);
}

int tly_store_worker_lease(tly_store *st, int64_t project_id, int64_t worker_id, int64_t now_ms,
                           tly_assignment *out, tly_error *err)
{
    return held_lease(st, project_id, worker_id, now_ms, out, err);
}

int tly_store_lease_held(tly_store *st, int64_t item_id, int64_t worker_id, int64_t now_ms,
                         tly_error *err)
{
    int rc = sq_int64(st,
                      "SELECT 1 FROM assignments WHERE item_id = ? AND worker_id = ? AND state = 'leased'"
                      " AND expires_at > ?",
                      NULL, err, "iii", item_id, worker_id, now_ms);
    return rc < 0 ? -1 : rc == 0;
}

/* ---- judgments ---------------------------------------------------------------------- */

int sq_read_judgment(const sq_row *r, void *ctx, tly_error *err)
{
    tly_judgment *j = ctx;
    j->id = sq_col_i64(r, 0);
    j->project_id = sq_col_i64(r, 1);
    j->item_id = sq_col_i64(r, 2);
    j->assignment_id = sq_col_i64(r, 3);
    j->worker_id = sq_col_i64(r, 4);
    j->duration_ms = sq_col_i64(r, 6);
    j->created_at = sq_col_i64(r, 7);
    j->gold = (int)sq_col_i64(r, 8);
    j->correct = (int)sq_col_i64(r, 9);
    sq_col_copy(r, 10, j->excluded, sizeof j->excluded);
    sq_col_copy(r, 11, j->source, sizeof j->source);
    return sq_col_json(r, 5, &j->answer, err);
}

void tly_judgment_clear(tly_judgment *j)
{
    if (!j)
        return;
    json_decref(j->answer);
    memset(j, 0, sizeof *j);
}

void sq_clear_judgment(void *j)
{
    tly_judgment_clear(j);
}

void tly_judgment_list_free(tly_judgment *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, sq_clear_judgment);
}

int tly_store_judgment_get(tly_store *st, int64_t id, tly_judgment *out, tly_error *err)
{
    return sq_one(st, "SELECT " SQ_JUDGMENT_COLS " FROM judgments WHERE id = ?", sq_read_judgment, sq_clear_judgment, out,
                  sizeof *out, "judgment", err, "i", id);
}

int tly_store_judgment_list(tly_store *st, int64_t project_id, int64_t item_id, int64_t after_id,
                            int limit, tly_judgment **out, size_t *n_out, tly_error *err)
{
    if (item_id)
        return sq_list(st,
                       "SELECT " SQ_JUDGMENT_COLS " FROM judgments WHERE item_id = ? AND project_id = ? AND id > ?"
                       " ORDER BY id LIMIT ?",
                       sq_read_judgment, sq_clear_judgment, sizeof **out, (void **)out, n_out, err, "iiii", item_id,
                       project_id, after_id, sq_page_limit(limit));
    return sq_list(st, "SELECT " SQ_JUDGMENT_COLS " FROM judgments WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?",
                   sq_read_judgment, sq_clear_judgment, sizeof **out, (void **)out, n_out, err, "iii", project_id,
                   after_id, sq_page_limit(limit));
}

/* ---- a worker's own numbers ------------------------------------------------------------ */

static int read_stats_row(const sq_row *r, void *ctx, tly_error *err)
{
    json_t *items = ctx;
    json_t *row = json_pack("{s:I,s:I,s:I,s:I,s:I}", "project_id", (json_int_t)sq_col_i64(r, 0), "judgments",
                            (json_int_t)sq_col_i64(r, 1), "skipped", (json_int_t)sq_col_i64(r, 2), "active",
                            (json_int_t)sq_col_i64(r, 3), "last_at", (json_int_t)sq_col_i64(r, 4));
    if (!row || json_array_append_new(items, row) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

int tly_store_worker_stats(tly_store *st, int64_t worker_id, int64_t now_ms, json_t **out,
                           tly_error *err)
{
    json_t *items = json_array();
    int64_t n = sq_each(st,
                        "SELECT project_id,"
                        " SUM(CASE WHEN state = 'submitted' THEN 1 ELSE 0 END),"
                        " SUM(CASE WHEN state = 'skipped' THEN 1 ELSE 0 END),"
                        " SUM(CASE WHEN state = 'leased' AND expires_at > ? THEN 1 ELSE 0 END),"
                        " MAX(CASE WHEN finished_at > 0 THEN finished_at ELSE leased_at END)"
                        " FROM assignments WHERE worker_id = ? GROUP BY project_id ORDER BY project_id",
                        read_stats_row, items, err, "ii", now_ms, worker_id);
    if (n < 0) {
        json_decref(items);
        return -1;
    }
    *out = json_pack("{s:o}", "items", items);
    return 0;
}
