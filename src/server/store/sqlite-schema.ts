import type Database from 'better-sqlite3'

/**
 * The SQLite schema and its migrations, versioned by `PRAGMA user_version`.
 *
 * Version 6 adds the deployment's token (`Store.deployment`): random,
 * made once, so that the processes of one database (on one machine, sharing
 * the file, with a broker between them) tell their events from another
 * deployment's on the same broker channel.
 * Version 5 drops the unique index on `notifications.id`: a random id put
 * each publish's entry on a page of its own, one more page in every commit
 * (about a sixth of a targeted publish's CPU in the store). Ids are random
 * UUIDs, made by the server; marking by id finds them through the user's
 * unread inbox entries.
 * Version 4 adds publishers' idempotency keys: each with the fingerprint of
 * its request, the answer (notification id and time, recipients) and when
 * it expires.
 * Version 3 adds retention: each user's `floor_seq` (the highest seq pruned
 * from the inbox, 0 for none) and each notification's `refs` (the inbox
 * entries that hold it, so the pruner deletes it with the last of them),
 * and makes `subscriptions.no` AUTOINCREMENT: a number is never given twice,
 * so a topic's fan-out job, which pages up to the last number at its
 * publish, cannot reach a subscription made after it in the place of one
 * that ended.
 * Version 2 keys everything by integers: users, notifications and
 * subscriptions have an integer `no` (their order of creation, which fan-out
 * jobs page by), and an inbox entry is three integers and a flag.
 * Version 1 (belfry 0.1.0) keyed the inbox by text ids and had no `no`.
 */
export const SCHEMA_VERSION = 6

const V2 = `
CREATE TABLE users (
  no          INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  latest_seq  INTEGER NOT NULL DEFAULT 0,
  acked_seq   INTEGER NOT NULL DEFAULT 0,
  unread      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE notifications (
  no          INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  title       TEXT NOT NULL,
  body        TEXT NOT NULL,
  priority    TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  data        TEXT,
  topic       TEXT
);
-- No index on notification_no: marking by id scans the user's unread entries in the primary key,
-- and a second index on every inbox entry makes each broadcast's commit about twice as slow.
CREATE TABLE inbox (
  user_no          INTEGER NOT NULL,
  seq              INTEGER NOT NULL,
  notification_no  INTEGER NOT NULL,
  read             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_no, seq)
) WITHOUT ROWID;
CREATE TABLE subscriptions (
  no       INTEGER PRIMARY KEY,
  topic    TEXT NOT NULL,
  user_no  INTEGER NOT NULL,
  UNIQUE (topic, user_no)
);
-- A topic's subscriptions in the order they were made (an index's entries end with the rowid, no).
CREATE INDEX subscriptions_by_topic ON subscriptions (topic);
CREATE INDEX subscriptions_by_user ON subscriptions (user_no);
-- A broadcast or topic publish too large for one transaction: the audience is users (or the topic's
-- subscriptions) with no in (after, up_to]; each batch moves after forward; done jobs are deleted.
CREATE TABLE fanout_jobs (
  no               INTEGER PRIMARY KEY,
  notification_no  INTEGER NOT NULL,
  topic            TEXT,
  after            INTEGER NOT NULL,
  up_to            INTEGER NOT NULL
);
-- One row written by each health check: proof that the store takes writes.
CREATE TABLE probe (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  checked_at  TEXT NOT NULL
);
`

/** From version 1 (text keys) to 2: the same data, renumbered; users in the order of their ids. */
const V1_TO_V2 = `
ALTER TABLE users RENAME TO users_v1;
ALTER TABLE notifications RENAME TO notifications_v1;
ALTER TABLE inbox RENAME TO inbox_v1;
ALTER TABLE subscriptions RENAME TO subscriptions_v1;
DROP INDEX IF EXISTS subscriptions_by_user;
DROP TABLE IF EXISTS probe;
${V2}
INSERT INTO users (id, latest_seq, acked_seq, unread) SELECT id, latest_seq, acked_seq, unread FROM users_v1 ORDER BY id;
INSERT INTO notifications (id, title, body, priority, created_at, data, topic)
  SELECT id, title, body, priority, created_at, data, topic FROM notifications_v1 ORDER BY created_at, id;
INSERT INTO inbox (user_no, seq, notification_no, read)
  SELECT u.no, i.seq, n.no, i.read FROM inbox_v1 i JOIN users u ON u.id = i.user_id JOIN notifications n ON n.id = i.notification_id;
INSERT INTO subscriptions (topic, user_no) SELECT s.topic, u.no FROM subscriptions_v1 s JOIN users u ON u.id = s.user_id ORDER BY s.topic, u.no;
DROP TABLE users_v1;
DROP TABLE notifications_v1;
DROP TABLE inbox_v1;
DROP TABLE subscriptions_v1;
`

/**
 * From version 2 to 3: retention's columns, each notification's refs counted
 * from the inbox as it is; subscriptions rebuilt with AUTOINCREMENT, its
 * sequence past every number a pending job may still reach.
 */
const V2_TO_V3 = `
CREATE TABLE subscriptions_v3 (
  no       INTEGER PRIMARY KEY AUTOINCREMENT,
  topic    TEXT NOT NULL,
  user_no  INTEGER NOT NULL,
  UNIQUE (topic, user_no)
);
INSERT INTO subscriptions_v3 (no, topic, user_no) SELECT no, topic, user_no FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v3 RENAME TO subscriptions;
CREATE INDEX subscriptions_by_topic ON subscriptions (topic);
CREATE INDEX subscriptions_by_user ON subscriptions (user_no);
DELETE FROM sqlite_sequence WHERE name = 'subscriptions';
INSERT INTO sqlite_sequence (name, seq) SELECT 'subscriptions', max(
  (SELECT coalesce(max(no), 0) FROM subscriptions),
  (SELECT coalesce(max(up_to), 0) FROM fanout_jobs WHERE topic IS NOT NULL));
ALTER TABLE users ADD COLUMN floor_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
UPDATE notifications SET refs = c.n
  FROM (SELECT notification_no, count(*) AS n FROM inbox GROUP BY notification_no) AS c
  WHERE c.notification_no = notifications.no;
`

/** From version 3 to 4: idempotency keys, found by key and removed oldest first. */
const V3_TO_V4 = `
CREATE TABLE idempotency_keys (
  key          TEXT PRIMARY KEY,
  fingerprint  TEXT NOT NULL,
  id           TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  recipients   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
`

/** From version 4 to 5: the notifications as they are, without the unique index on their ids. */
const V4_TO_V5 = `
CREATE TABLE notifications_v5 (
  no          INTEGER PRIMARY KEY,
  id          TEXT NOT NULL,
  title       TEXT NOT NULL,
  body        TEXT NOT NULL,
  priority    TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  data        TEXT,
  topic       TEXT,
  refs        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO notifications_v5 (no, id, title, body, priority, created_at, data, topic, refs)
  SELECT no, id, title, body, priority, created_at, data, topic, refs FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_v5 RENAME TO notifications;
`

/** From version 5 to 6: the deployment's token, 32 random hex digits, made once. */
const V5_TO_V6 = `
CREATE TABLE deployment (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  token  TEXT NOT NULL
);
INSERT INTO deployment (id, token) VALUES (1, lower(hex(randomblob(16))));
`

/** Brings the database to {@link SCHEMA_VERSION}, in one transaction; refuses a newer one. */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new Error(`its schema is version ${version}, newer than this belfry's (${SCHEMA_VERSION})`)
    if (version === SCHEMA_VERSION) return
    if (version < 2) {
      const hasUsers = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'").get() !== undefined
      db.exec(hasUsers ? V1_TO_V2 : V2)
    }
    if (version < 3) db.exec(V2_TO_V3)
    if (version < 4) db.exec(V3_TO_V4)
    if (version < 5) db.exec(V4_TO_V5)
    db.exec(V5_TO_V6)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
