-- The first schema: identities, credentials, requests, the audit chain and
-- its head, and the key-value area. Timestamps are milliseconds since the
-- Unix epoch (UTC), as in the SQLite store, so both encode alike.

CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    -- PersonKey of the email (trimmed, lower-cased): one person, many identities.
    email_key   TEXT NOT NULL,
    groups      TEXT[] NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX users_email_key ON users (email_key);

CREATE TABLE agents (
    name        TEXT PRIMARY KEY,
    owner       TEXT,
    groups      TEXT[] NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- Only SHA-256 hashes of tokens are kept. Revoking an identity deletes its
-- rows here, so a lookup never has to consult revoked_at to refuse a token.
CREATE TABLE credentials (
    token_hash      TEXT PRIMARY KEY,
    principal_kind  TEXT NOT NULL CHECK (principal_kind IN ('user', 'agent')),
    principal_name  TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE INDEX credentials_principal ON credentials (principal_kind, principal_name);

-- The indexed columns are copies of fields of `body` (the whole request as
-- JSON text, exactly as encoded, so key order and numbers survive), kept
-- for filtering; `body` is the truth.
CREATE TABLE requests (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    principal_kind  TEXT NOT NULL,
    principal_name  TEXT NOT NULL,
    kind            TEXT NOT NULL,
    resource        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- expires_at while pending, release_by while approved, NULL otherwise.
    deadline        BIGINT,
    body            TEXT NOT NULL
);

CREATE INDEX requests_created ON requests (created_at DESC, id DESC);
CREATE INDEX requests_status ON requests (status, created_at DESC, id DESC);
CREATE INDEX requests_principal ON requests (principal_kind, principal_name, created_at DESC, id DESC);
CREATE INDEX requests_kind ON requests (kind, created_at DESC, id DESC);
CREATE INDEX requests_resource ON requests (resource, created_at DESC, id DESC);
CREATE INDEX requests_deadline ON requests (deadline) WHERE deadline IS NOT NULL;

-- The hash chain. `body` is the canonical (JCS) JSON text that was hashed.
CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY CHECK (seq > 0),
    time       BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- One row: where the chain continues, and a count of committed write
-- transactions. Every write transaction locks this row first
-- (SELECT ... FOR UPDATE), which is what gives the audit log one total
-- order across replicas and makes every read-decide-write race-free.
CREATE TABLE chain_head (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    seq      BIGINT NOT NULL,
    hash     TEXT NOT NULL,
    changes  BIGINT NOT NULL
);

INSERT INTO chain_head (id, seq, hash, changes)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- A small key-value area for components that keep a little durable state
-- of their own: delivery cursors, chat message references, the shared
-- policy set.
CREATE TABLE kv (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
