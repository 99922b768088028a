-- People: users, their memberships in organisations with a role, sessions,
-- one-time sign-in links, invitations, API tokens and the sign-in attempts
-- that throttle password guessing. Every token-like value is stored only as
-- its SHA-256 hash.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '_%@_%' AND length(email) <= 320),
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- argon2id in PHC string form; empty when the user has no password
    -- (OIDC or sign-in links only).
    password_hash text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'responder', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE sessions (
    id           bigserial PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The organisation the user is working in; NULL until one is chosen.
    org_id       bigint REFERENCES orgs (id) ON DELETE SET NULL,
    csrf_token   text NOT NULL,
    ip           text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE login_links (
    id         bigserial PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     bigint REFERENCES orgs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE TABLE login_attempts (
    id           bigserial PRIMARY KEY,
    email        text NOT NULL,
    ip           text NOT NULL,
    succeeded    boolean NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, attempted_at);
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, attempted_at);

CREATE TABLE invitations (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(email) AND email LIKE '_%@_%'),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'responder', 'viewer')),
    token_hash  bytea NOT NULL UNIQUE,
    invited_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by bigint REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz
);
CREATE INDEX invitations_org_idx ON invitations (org_id, id DESC);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash   bytea NOT NULL UNIQUE,
    -- The first characters of the token, shown so people can tell tokens apart.
    display      text NOT NULL,
    created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_org_idx ON api_tokens (org_id, id DESC);

-- Organisation-wide defaults for keys.
ALTER TABLE orgs
    ADD COLUMN default_revocation_url text NOT NULL DEFAULT '',
    ADD COLUMN default_max_age_days   integer NOT NULL DEFAULT 90 CHECK (default_max_age_days BETWEEN 0 AND 36500);

-- Key metadata. rotated_at is when the current fingerprint was registered
-- (NULL: never rotated); max_age_days 0 means the org default applies.
ALTER TABLE keys
    ADD COLUMN environment      text NOT NULL DEFAULT 'production' CHECK (environment IN ('production', 'staging', 'development')),
    ADD COLUMN owner            text NOT NULL DEFAULT '' CHECK (length(owner) <= 200),
    ADD COLUMN notes            text NOT NULL DEFAULT '' CHECK (length(notes) <= 4000),
    ADD COLUMN tags             text[] NOT NULL DEFAULT '{}',
    ADD COLUMN rotated_at       timestamptz,
    ADD COLUMN max_age_days     integer NOT NULL DEFAULT 0 CHECK (max_age_days BETWEEN 0 AND 36500),
    ADD COLUMN revocation_url   text NOT NULL DEFAULT '',
    ADD COLUMN state_changed_at timestamptz,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();
CREATE INDEX keys_org_idx ON keys (org_id, id);

-- Every fingerprint a key has had, the current one included.
CREATE TABLE key_fingerprints (
    id          bigserial PRIMARY KEY,
    key_id      bigint NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    fingerprint text NOT NULL,
    provider    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    replaced_at timestamptz
);
CREATE INDEX key_fingerprints_key_idx ON key_fingerprints (key_id, id);
INSERT INTO key_fingerprints (key_id, fingerprint, provider, created_at)
    SELECT id, fingerprint, provider, created_at FROM keys;

-- The audit log: who changed what, when, from where. Append-only: a trigger
-- refuses updates and deletes, and org_id carries no foreign key so the
-- record outlives what it describes.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    org_id      bigint,
    actor_user  bigint,
    actor_token bigint,
    actor       text NOT NULL DEFAULT '',
    action      text NOT NULL,
    object_type text NOT NULL DEFAULT '',
    object_id   text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}',
    ip          text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
