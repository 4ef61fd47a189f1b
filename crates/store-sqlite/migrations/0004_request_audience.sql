-- Who may see each request, indexed, so that a list for one person reads
-- only what that person may see and a flood of requests for other groups
-- cannot push theirs out of a page. One row per audience key: the
-- requester (`p:<kind>:<name>`) and each group named in a requirement
-- (`g:<group>`). `status` and `created_at` are copies of the request's, for
-- the status filter and the page cursor.
CREATE TABLE request_audience (
    audience    TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (audience, request_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX request_audience_status ON request_audience (audience, status, created_at DESC, request_id DESC);
CREATE INDEX request_audience_created ON request_audience (audience, created_at DESC, request_id DESC);
CREATE INDEX request_audience_request ON request_audience (request_id);

-- Requests stored before this migration. (CASE keeps json_* away from
-- anything that is not JSON.)
INSERT OR IGNORE INTO request_audience (audience, request_id, status, created_at)
SELECT 'p:' || principal_kind || ':' || principal_name, id, status, created_at FROM requests;

INSERT OR IGNORE INTO request_audience (audience, request_id, status, created_at)
SELECT 'g:' || g.value, r.id, r.status, r.created_at
  FROM requests AS r,
       json_each(CASE WHEN json_valid(r.body) THEN r.body END, '$.requirements') AS q,
       json_each(CASE WHEN json_type(q.value, '$.groups') = 'array' THEN q.value END, '$.groups') AS g
 WHERE g.type = 'text';
