/* migrations.c -- the schema, as an ordered list of versioned steps.
 *
 * schema_migrations(version, applied_at) records which steps a database has. At open
 * every step not recorded yet is applied in its own write transaction (BEGIN
 * IMMEDIATE), and the "already applied?" check is made inside that transaction, so
 * two processes opening the same fresh database cannot both apply a step. A step is
 * never edited once released: schema changes are new steps appended to the list.
 *
 * The SQL is written for both SQLite and PostgreSQL. The one place they differ, the
 * auto-increment primary key, is spelled "@PK@" and replaced by the driver's pk_type;
 * likewise "@BLOB@" (binary column) by its blob_type.
 *
 * Fractions are DOUBLE PRECISION, never REAL: REAL is 4 bytes on PostgreSQL (SQLite
 * gives both names the same 8-byte REAL affinity, so databases made before that
 * spelling are unchanged).
 *
 * Two nodes never migrate at once: on PostgreSQL sq_migrate holds the driver's
 * migrate_lock (a session advisory lock) throughout; on SQLite each step's write
 * transaction is the lock.
 *
 * Conventions: times are BIGINT milliseconds since the epoch; JSON is TEXT; enums
 * are stored by name (readable in a SQL shell, stable if the C enum is reordered).
 * Batch counts are not stored: they are derived from batch_files when a batch is
 * read (store_batches.c), so they can never drift from the rows they count.
 */
#include "storage/sql.h"

#include "core/log.h"
#include "core/timeutil.h"

#include <stdlib.h>

struct migration {
    int version;
    const char *name;
    const char *sql;
};

static const struct migration steps[] = {
    {1, "initial schema",
     "CREATE TABLE users ("
     "  id @PK@,"
     "  name TEXT NOT NULL UNIQUE,"
     "  role TEXT NOT NULL,"
     "  token_sha256 TEXT NOT NULL,"
     "  created_at BIGINT NOT NULL);"
     "CREATE UNIQUE INDEX users_token ON users (token_sha256);"

     /* created_by is not a foreign key: projects outlive the users who made them. */
     "CREATE TABLE projects ("
     "  id @PK@,"
     "  name TEXT NOT NULL,"
     "  media TEXT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  template_json TEXT,"
     "  workflow TEXT,"
     "  guidelines TEXT,"
     "  created_by BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL);"

     "CREATE TABLE batches ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  name TEXT NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  source TEXT,"
     "  closed INTEGER NOT NULL DEFAULT 0,"
     "  error TEXT,"
     "  created_at BIGINT NOT NULL,"
     "  closed_at BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX batches_project ON batches (project_id, id);"

     "CREATE TABLE batch_files ("
     "  id @PK@,"
     "  batch_id BIGINT NOT NULL REFERENCES batches (id),"
     "  name TEXT NOT NULL,"
     "  source_kind TEXT NOT NULL,"
     "  location TEXT,"
     "  sha256 TEXT NOT NULL DEFAULT '',"
     "  size BIGINT NOT NULL DEFAULT 0,"
     "  gold TEXT,"
     "  meta TEXT,"
     "  state TEXT NOT NULL DEFAULT 'pending',"
     "  error_code TEXT NOT NULL DEFAULT '',"
     "  error_message TEXT,"
     "  item_id BIGINT NOT NULL DEFAULT 0,"
     "  created_at BIGINT NOT NULL,"
     "  finished_at BIGINT NOT NULL DEFAULT 0,"
     "  UNIQUE (batch_id, name));"
     /* Serves the per-state counts and the per-state listing (keyset on id). */
     "CREATE INDEX batch_files_state ON batch_files (batch_id, state, id);"
     /* Start-up recovery maps spool files back to their rows. */
     "CREATE INDEX batch_files_location ON batch_files (source_kind, location);"

     /* batch_id is informational (0 for items not from a batch): no foreign key. */
     "CREATE TABLE items ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  batch_id BIGINT NOT NULL DEFAULT 0,"
     "  name TEXT NOT NULL,"
     "  sha256 TEXT NOT NULL,"
     "  size BIGINT NOT NULL DEFAULT 0,"
     "  state TEXT NOT NULL,"
     "  media TEXT,"
     "  thumb_sha256 TEXT NOT NULL DEFAULT '',"
     "  waveform_sha256 TEXT NOT NULL DEFAULT '',"
     "  gold TEXT,"
     "  meta TEXT,"
     "  created_at BIGINT NOT NULL,"
     "  UNIQUE (project_id, sha256));"
     "CREATE INDEX items_state ON items (project_id, state, id);"

     /* Thumbnails and waveforms: small derived bytes, committed with their item in
      * one transaction. In the blob store each would cost a file, an inode and two
      * fsyncs per item, and could exist without its item or the reverse. */
     "CREATE TABLE previews ("
     "  item_id BIGINT NOT NULL REFERENCES items (id),"
     "  kind TEXT NOT NULL,"
     "  sha256 TEXT NOT NULL,"
     "  data @BLOB@ NOT NULL,"
     "  PRIMARY KEY (item_id, kind));"

     "CREATE TABLE jobs ("
     "  id @PK@,"
     "  kind TEXT NOT NULL,"
     "  ref_id BIGINT NOT NULL DEFAULT 0,"
     "  payload TEXT,"
     "  state TEXT NOT NULL,"          /* queued | running | failed (done rows are deleted) */
     "  owner TEXT,"
     "  lease_until BIGINT NOT NULL DEFAULT 0,"
     "  run_after BIGINT NOT NULL DEFAULT 0,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  last_error TEXT,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL);"
     /* Claiming looks for (queued, run_after <= now) or (running, lease_until < now). */
     "CREATE INDEX jobs_due ON jobs (state, run_after);"
     "CREATE INDEX jobs_lease ON jobs (state, lease_until);"
     "CREATE INDEX jobs_owner ON jobs (owner, state);"},

    {2, "crowd work: assignments and judgments",
     /* A per-project secret for worker pseudonyms in reports and exports. */
     "ALTER TABLE projects ADD COLUMN pseudonym_key TEXT NOT NULL DEFAULT '';"
     /* Judgments received so far: with the active leases, what dispatch compares to
      * the overlap; kept on the item so choosing a task reads one index. */
     "ALTER TABLE items ADD COLUMN judged INTEGER NOT NULL DEFAULT 0;"
     /* Dispatch walks items of a project in state 'labeling' by judged (closest to
      * completion first), then 'new' ones oldest batch first: both in index order. */
     "CREATE INDEX items_dispatch ON items (project_id, state, judged DESC, batch_id, id);"
     "CREATE INDEX items_new ON items (project_id, state, batch_id, id);"

     /* One lease of one item to one worker. UNIQUE (item, worker): nobody gets an
      * item twice, whatever became of the first lease. A 'leased' row past
      * expires_at is an expired lease: it no longer holds a slot, with no sweep. */
     "CREATE TABLE assignments ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  item_id BIGINT NOT NULL REFERENCES items (id),"
     "  worker_id BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"               /* leased | submitted | skipped */
     "  mode TEXT NOT NULL DEFAULT 'work',"
     "  leased_at BIGINT NOT NULL,"
     "  expires_at BIGINT NOT NULL,"
     "  finished_at BIGINT NOT NULL DEFAULT 0,"
     "  UNIQUE (item_id, worker_id));"
     "CREATE INDEX assignments_active ON assignments (item_id, state, expires_at);"
     "CREATE INDEX assignments_worker ON assignments (worker_id, project_id, state, expires_at);"

     "CREATE TABLE judgments ("
     "  id @PK@,"
     "  assignment_id BIGINT NOT NULL UNIQUE REFERENCES assignments (id),"
     "  project_id BIGINT NOT NULL,"
     "  item_id BIGINT NOT NULL,"
     "  worker_id BIGINT NOT NULL,"
     "  answer TEXT NOT NULL,"
     "  duration_ms BIGINT NOT NULL DEFAULT 0,"
     "  created_at BIGINT NOT NULL);"
     "CREATE INDEX judgments_project ON judgments (project_id, id);"
     "CREATE INDEX judgments_item ON judgments (item_id, id);"},

    {3, "quality: gold, standing, results, review, acceptance, history",
     /* Judgments an item needs beyond the workflow's overlap: raised by dynamic
      * overlap, by rework, and when a stopped worker's judgments are excluded. */
     "ALTER TABLE items ADD COLUMN extra INTEGER NOT NULL DEFAULT 0;"
     /* The acceptance lot a finished item is in (0 = none yet). */
     "ALTER TABLE items ADD COLUMN lot_id BIGINT NOT NULL DEFAULT 0;"
     /* Test questions are items in state 'gold': dispatch never walks them as work. */
     "UPDATE items SET state = 'gold' WHERE gold IS NOT NULL AND state = 'new';"
     "ALTER TABLE assignments ADD COLUMN gold INTEGER NOT NULL DEFAULT 0;"
     /* gold: on a test question (then correct says how it went); excluded: why the
      * judgment no longer counts (worker_stopped, rejected), NULL while it counts;
      * source: crowd, or import for judgments collected elsewhere. */
     "ALTER TABLE judgments ADD COLUMN gold INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE judgments ADD COLUMN correct INTEGER;"
     "ALTER TABLE judgments ADD COLUMN excluded TEXT;"
     "ALTER TABLE judgments ADD COLUMN source TEXT NOT NULL DEFAULT 'crowd';"
     "CREATE INDEX judgments_worker ON judgments (project_id, worker_id, id);"
     "CREATE INDEX jobs_kind_ref ON jobs (kind, ref_id, state);"

     /* A worker's standing in a project: quiz or work mode, gold record, trust. */
     "CREATE TABLE project_workers ("
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  worker_id BIGINT NOT NULL,"
     "  mode TEXT NOT NULL,"                 /* quiz | work */
     "  status TEXT NOT NULL,"               /* active | failed | stopped */
     "  quiz_seen INTEGER NOT NULL DEFAULT 0,"
     "  quiz_correct INTEGER NOT NULL DEFAULT 0,"
     "  gold_seen INTEGER NOT NULL DEFAULT 0,"
     "  gold_correct INTEGER NOT NULL DEFAULT 0,"
     "  trust DOUBLE PRECISION NOT NULL,"
     "  reason TEXT,"
     "  flags TEXT,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL,"
     "  PRIMARY KEY (project_id, worker_id));"

     /* The aggregated label of an item. Only items in review, done or released have
      * one: an item that goes back to labeling loses it. */
     "CREATE TABLE results ("
     "  item_id BIGINT PRIMARY KEY REFERENCES items (id),"
     "  project_id BIGINT NOT NULL,"
     "  answer TEXT NOT NULL,"
     "  confidence DOUBLE PRECISION NOT NULL,"
     "  method TEXT NOT NULL,"
     "  detail TEXT,"
     "  judgments INTEGER NOT NULL,"
     "  flags TEXT,"
     "  updated_at BIGINT NOT NULL);"
     "CREATE INDEX results_project ON results (project_id, item_id);"

     /* What happened to an item after ingest: rounds, verdicts, rework. */
     "CREATE TABLE item_events ("
     "  id @PK@,"
     "  item_id BIGINT NOT NULL,"
     "  project_id BIGINT NOT NULL,"
     "  at BIGINT NOT NULL,"
     "  actor BIGINT NOT NULL DEFAULT 0,"
     "  kind TEXT NOT NULL,"
     "  detail TEXT);"
     "CREATE INDEX item_events_item ON item_events (item_id, id);"

     /* A review lease and, once given, its verdict. */
     "CREATE TABLE reviews ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL,"
     "  item_id BIGINT NOT NULL REFERENCES items (id),"
     "  reviewer_id BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"               /* leased | done */
     "  reason TEXT,"
     "  verdict TEXT,"                      /* accept | reject | fix */
     "  answer TEXT,"
     "  comment TEXT,"
     "  leased_at BIGINT NOT NULL,"
     "  expires_at BIGINT NOT NULL,"
     "  finished_at BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX reviews_item ON reviews (item_id, state, expires_at);"
     "CREATE INDEX reviews_reviewer ON reviews (reviewer_id, project_id, state, expires_at);"

     /* Customer acceptance: a lot of finished items, its plan, its sample. */
     "CREATE TABLE lots ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  state TEXT NOT NULL,"               /* open | accepted | rejected */
     "  lot_size BIGINT NOT NULL,"
     "  sample_size BIGINT NOT NULL,"
     "  accept_number INTEGER NOT NULL,"
     "  reject_number INTEGER NOT NULL,"
     "  aql DOUBLE PRECISION NOT NULL,"
     "  code_letter TEXT NOT NULL,"
     "  seed BIGINT NOT NULL,"
     "  created_by BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL,"
     "  decided_at BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX lots_project ON lots (project_id, id);"
     "CREATE TABLE lot_items ("
     "  lot_id BIGINT NOT NULL REFERENCES lots (id),"
     "  item_id BIGINT NOT NULL,"
     "  sampled INTEGER NOT NULL DEFAULT 0,"
     "  verdict TEXT,"                      /* ok | defect, for sampled items */
     "  comment TEXT,"
     "  judged_by BIGINT NOT NULL DEFAULT 0,"
     "  judged_at BIGINT NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (lot_id, item_id));"},

    {4, "exports: dataset versions",
     /* One dataset version. sha256 is the manifest's (the version's identity, its
      * ETag); the artifact is what the download serves: the one annotation file, or a
      * tar of the whole dataset, under DATA/exports. */
     "CREATE TABLE exports ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  state TEXT NOT NULL,"               /* queued | running | done | failed */
     "  format TEXT NOT NULL,"
     "  params TEXT NOT NULL,"
     "  items BIGINT NOT NULL DEFAULT 0,"
     "  files BIGINT NOT NULL DEFAULT 0,"
     "  bytes BIGINT NOT NULL DEFAULT 0,"
     "  progress BIGINT NOT NULL DEFAULT 0,"
     "  total BIGINT NOT NULL DEFAULT 0,"
     "  sha256 TEXT NOT NULL DEFAULT '',"
     "  artifact TEXT NOT NULL DEFAULT '',"
     "  artifact_sha256 TEXT NOT NULL DEFAULT '',"
     "  artifact_size BIGINT NOT NULL DEFAULT 0,"
     "  content_type TEXT NOT NULL DEFAULT '',"
     "  error TEXT,"
     "  created_by BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL,"
     "  finished_at BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX exports_project ON exports (project_id, id);"
     /* Stratified splits: an item's split, decided once per split configuration
      * (split_key) when it is first exported, so later versions never move it. */
     "CREATE TABLE split_assignments ("
     "  project_id BIGINT NOT NULL,"
     "  split_key TEXT NOT NULL,"
     "  item_id BIGINT NOT NULL,"
     "  class TEXT NOT NULL,"
     "  split TEXT NOT NULL,"
     "  PRIMARY KEY (project_id, split_key, item_id));"},

    {5, "pre-labeling: models and predictions",
     /* A model attached to a project: a remote Label Studio ML backend or a built-in.
      * since_item: items after this id are pre-labeled automatically (those that
      * existed at creation only on an explicit run). failures / open_until: the
      * circuit breaker. */
     "CREATE TABLE models ("
     "  id @PK@,"
     "  project_id BIGINT NOT NULL REFERENCES projects (id),"
     "  name TEXT NOT NULL,"
     "  kind TEXT NOT NULL,"                /* remote | builtin */
     "  url TEXT,"
     "  builtin TEXT,"
     "  state TEXT NOT NULL,"               /* active | disabled */
     "  version TEXT NOT NULL DEFAULT '',"
     "  since_item BIGINT NOT NULL DEFAULT 0,"
     "  failures INTEGER NOT NULL DEFAULT 0,"
     "  open_until BIGINT NOT NULL DEFAULT 0,"
     "  last_error TEXT,"
     "  predicted BIGINT NOT NULL DEFAULT 0,"
     "  errors BIGINT NOT NULL DEFAULT 0,"
     "  created_at BIGINT NOT NULL,"
     "  UNIQUE (project_id, name));"
     /* One model's pre-label of one item, or the error that stopped it. Never a
      * judgment. */
     "CREATE TABLE predictions ("
     "  id @PK@,"
     "  item_id BIGINT NOT NULL REFERENCES items (id),"
     "  project_id BIGINT NOT NULL,"
     "  model_id BIGINT NOT NULL REFERENCES models (id),"
     "  model_version TEXT NOT NULL DEFAULT '',"
     "  answer TEXT,"
     "  score DOUBLE PRECISION,"
     "  error TEXT,"
     "  created_at BIGINT NOT NULL,"
     "  UNIQUE (item_id, model_id));"
     "CREATE INDEX predictions_model ON predictions (model_id, item_id);"},

    {6, "pre-labeling: the image classifier's features and weights",
     /* Features of an item's image (annotate/classifier.h), computed once per
      * features version; the built-in image classifier's fitted weights per model,
      * with the number of accepted labels they were fitted on and the number at which
      * to fit again (next_train_at; stale = 1 once that many exist). */
     "CREATE TABLE classifier_features ("
     "  item_id BIGINT PRIMARY KEY REFERENCES items (id),"
     "  version INTEGER NOT NULL,"
     "  data @BLOB@ NOT NULL);"
     "CREATE TABLE classifier_state ("
     "  model_id BIGINT PRIMARY KEY REFERENCES models (id),"
     "  trained_on BIGINT NOT NULL DEFAULT 0,"
     "  next_train_at BIGINT NOT NULL DEFAULT 0,"
     "  stale INTEGER NOT NULL DEFAULT 0,"
     "  weights @BLOB@,"
     "  info TEXT,"
     "  updated_at BIGINT NOT NULL);"},

    {7, "ingest checks: perceptual hashes and image quality flags",
     /* One row per image item (store_imagechecks.c): its 64-bit perceptual hash as a
      * signed BIGINT, the hash's four 16-bit bands each indexed with the project
      * (the multi-index near-duplicate search), the flags it was ingested with
      * (bits of ingest/imagecheck.h) and the item it nearly duplicates (0 = none). */
     "CREATE TABLE image_checks ("
     "  item_id BIGINT PRIMARY KEY REFERENCES items (id),"
     "  project_id BIGINT NOT NULL,"
     "  batch_id BIGINT NOT NULL,"
     "  phash BIGINT NOT NULL,"
     "  band0 INTEGER NOT NULL,"
     "  band1 INTEGER NOT NULL,"
     "  band2 INTEGER NOT NULL,"
     "  band3 INTEGER NOT NULL,"
     "  flags INTEGER NOT NULL DEFAULT 0,"
     "  near_duplicate_of BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX image_checks_band0 ON image_checks (project_id, band0);"
     "CREATE INDEX image_checks_band1 ON image_checks (project_id, band1);"
     "CREATE INDEX image_checks_band2 ON image_checks (project_id, band2);"
     "CREATE INDEX image_checks_band3 ON image_checks (project_id, band3);"
     /* Partial: only flagged items are reported per batch, and most are not. */
     "CREATE INDEX image_checks_flagged ON image_checks (batch_id, item_id) WHERE flags <> 0;"},
    /* Dispatch order of new items: priority first (0 unless a model's prediction set
     * it: prelabel.uncertain_first), then batch and id as before. screened: a model's
     * derived threshold has passed the item over once (annotate/prelabel.c route). */
    {8, "pre-labeling: dispatch priority, screened items",
     "ALTER TABLE items ADD COLUMN priority DOUBLE PRECISION NOT NULL DEFAULT 0;"
     "ALTER TABLE items ADD COLUMN screened INTEGER NOT NULL DEFAULT 0;"
     "DROP INDEX items_new;"
     "CREATE INDEX items_new ON items (project_id, state, priority, batch_id, id);"},
};

/* Every table the steps above create, for tly_store_copy (store_copy.c), in
 * dependency order: a table comes after the tables its REFERENCES clauses name, so
 * rows copied in this order never miss their referenced row. A step that creates a
 * table adds it here too; test_storage_copy compares this list with the schema of a
 * fresh database (and the order with its foreign keys), and a copy refuses to start
 * when either store has a table the list lacks. schema_migrations is not listed:
 * each store has its own (both are at the same version before a copy starts). */
const struct sq_table sq_tables[] = {
    {"users", "id", 1, 1},
    {"projects", "id", 1, 1},
    {"batches", "id", 1, 1},
    {"batch_files", "id", 1, 1},
    {"items", "id", 1, 1},
    {"previews", "item_id, kind", 2, 0},
    {"jobs", "id", 1, 1},
    {"assignments", "id", 1, 1},
    {"judgments", "id", 1, 1},
    {"project_workers", "project_id, worker_id", 2, 0},
    {"results", "item_id", 1, 0},
    {"item_events", "id", 1, 1},
    {"reviews", "id", 1, 1},
    {"lots", "id", 1, 1},
    {"lot_items", "lot_id, item_id", 2, 0},
    {"exports", "id", 1, 1},
    {"split_assignments", "project_id, split_key, item_id", 3, 0},
    {"models", "id", 1, 1},
    {"predictions", "id", 1, 1},
    {"classifier_features", "item_id", 1, 0},
    {"classifier_state", "model_id", 1, 0},
    {"image_checks", "item_id", 1, 0},
};
const size_t sq_table_count = sizeof sq_tables / sizeof sq_tables[0];

static int apply(tly_store *st, tly_sql_conn *c, const struct migration *m, tly_error *err)
{
    if (tly_store_begin(st, err) < 0)
        return -1;
    int rc = sq_int64(st, "SELECT version FROM schema_migrations WHERE version = ?", NULL, err,
                      "i", (int64_t)m->version);
    if (rc == 0) {   /* applied already, possibly by another process just now */
        tly_store_rollback(st);
        return 0;
    }
    char *sql = NULL, *with_pk = NULL;
    if (rc == 1 && (!(with_pk = sq_substitute(m->sql, "@PK@", st->drv->pk_type)) ||
                    !(sql = sq_substitute(with_pk, "@BLOB@", st->drv->blob_type))))
        rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    free(with_pk);
    if (rc == 1)
        rc = st->drv->exec(c, sql, err);
    free(sql);
    if (rc == 0)
        rc = sq_exec(st, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", err,
                     "ii", (int64_t)m->version, tly_now_ms());
    if (rc == 0)
        rc = tly_store_commit(st, err);
    if (rc < 0) {
        tly_store_rollback(st);
        return -1;
    }
    LOG_INFO("storage", "applied schema migration %d (%s)", m->version, m->name);
    return 0;
}

static int migrate_locked(tly_store *st, tly_sql_conn *c, tly_error *err)
{
    if (st->drv->exec(c,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      "  version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                      err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (apply(st, c, &steps[i], err) < 0) {
            tly_error_prefix(err, "schema migration %d (%s): ", steps[i].version,
                             steps[i].name);
            return -1;
        }
    }
    return 0;
}

int sq_migrate(tly_store *st, tly_error *err)
{
    tly_sql_conn *c = sq_conn(st, err);
    if (!c)
        return -1;
    if (st->drv->migrate_lock && st->drv->exec(c, st->drv->migrate_lock, err) < 0)
        return -1;
    int rc = migrate_locked(st, c, err);
    if (st->drv->migrate_unlock) {
        tly_error ignore;   /* the lock also ends with the session */
        st->drv->exec(c, st->drv->migrate_unlock, &ignore);
    }
    return rc;
}
