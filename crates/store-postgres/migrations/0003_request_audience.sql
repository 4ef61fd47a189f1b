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
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (audience, request_id)
);

CREATE INDEX request_audience_status ON request_audience (audience, status, created_at DESC, request_id DESC);
CREATE INDEX request_audience_created ON request_audience (audience, created_at DESC, request_id DESC);
CREATE INDEX request_audience_request ON request_audience (request_id);

-- Requests stored before this migration.
INSERT INTO request_audience (audience, request_id, status, created_at)
SELECT 'p:' || principal_kind || ':' || principal_name, id, status, created_at FROM requests
ON CONFLICT DO NOTHING;

INSERT INTO request_audience (audience, request_id, status, created_at)
SELECT 'g:' || g.name, r.id, r.status, r.created_at
  FROM requests AS r
 CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(r.body::jsonb -> 'requirements') = 'array'
                THEN r.body::jsonb -> 'requirements' ELSE '[]'::jsonb END) AS q(requirement)
 CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(q.requirement -> 'groups') = 'array'
                THEN q.requirement -> 'groups' ELSE '[]'::jsonb END) AS e(element)
 CROSS JOIN LATERAL (SELECT e.element #>> '{}' AS name WHERE jsonb_typeof(e.element) = 'string') AS g
ON CONFLICT DO NOTHING;
