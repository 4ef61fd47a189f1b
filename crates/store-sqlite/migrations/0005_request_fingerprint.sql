-- The action's fingerprint as a column, and an index of the open requests
-- by it, so that `?reuse=open` finds a requester's open request for one
-- action with a point lookup instead of reading the requester's open
-- requests of that kind and comparing bodies (issue 14: that cost grew
-- with the requester's open requests, and past 1,000 it missed).
ALTER TABLE requests ADD COLUMN fingerprint TEXT;

-- Requests stored before this migration. (CASE keeps json_* away from
-- anything that is not JSON; such a row keeps NULL and is never found.)
UPDATE requests
   SET fingerprint = CASE WHEN json_valid(body) THEN
                         CASE WHEN json_type(body, '$.fingerprint') = 'text'
                              THEN json_extract(body, '$.fingerprint') END
                     END;

-- Only open requests are indexed: a request leaves the index as it is
-- released or closed, so the index stays as small as what is open.
CREATE INDEX requests_open_fingerprint
    ON requests (fingerprint, principal_kind, principal_name, status, created_at, id)
 WHERE status IN ('pending', 'approved');
