-- Built-in revokers' call budgets, shared by every process: GitHub's
-- credential revocation API allows 60 calls an hour from one address, and
-- all crawler processes of a deployment usually leave through one. A row per
-- call made in the last hour; parked_until is set when the provider itself
-- answers that the budget is spent.
CREATE TABLE revoker_calls (
    id      bigserial PRIMARY KEY,
    revoker text        NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX revoker_calls_revoker_at ON revoker_calls (revoker, at);

CREATE TABLE revoker_parked (
    revoker      text PRIMARY KEY,
    parked_until timestamptz NOT NULL
);
