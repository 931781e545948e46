-- kaf database schema, version 1.
--
-- A kaf database holds sweeps: grids of training runs of the two-layer
-- network with a chosen output activation (K-AF among them). It is the
-- documented interface to kaf's results: query it with sqlite3 while a
-- sweep runs (WAL mode) or after.
--
-- The file is marked with PRAGMA application_id = 1262569009 ('KAF1')
-- and PRAGMA user_version = 1; kaf refuses any other version.
--
-- Conventions: a NaN or an infinity is stored as NULL (SQLite has no
-- NaN); times are ISO 8601 UTC text; names are the command-line names
-- (init 'xavier_uniform', opt 'adam', cause 'kernel_underflow', ...).

-- One row per sweep: a spec (the grid), a seed and a seeding design.
-- Rerunning the same spec and seed continues this sweep; the runs count
-- per cell is not part of the identity, so raising it extends the sweep.
CREATE TABLE sweep (
    sweep_id      INTEGER PRIMARY KEY,
    spec_hash     TEXT NOT NULL UNIQUE,  -- hash of spec, seed, seeding
    spec          TEXT NOT NULL,         -- canonical "axis = v1, v2" lines
    preset        TEXT,                  -- 'exp3', ... or NULL
    seed          INTEGER NOT NULL,
    seeding       TEXT NOT NULL CHECK (seeding IN ('paired', 'independent')),
    runs_per_cell INTEGER NOT NULL,      -- largest of the cells' runs
    kaf_version   TEXT NOT NULL,
    host          TEXT NOT NULL,
    threads       INTEGER NOT NULL,      -- of the latest invocation
    started_at    TEXT NOT NULL,
    finished_at   TEXT                   -- NULL until every run is stored
);

-- One row per grid cell, its whole configuration as columns.
CREATE TABLE cell (
    cell_id     INTEGER PRIMARY KEY,
    sweep_id    INTEGER NOT NULL REFERENCES sweep (sweep_id),
    cell_index  INTEGER NOT NULL,        -- position in the grid order
    block       TEXT NOT NULL,           -- [section] of the spec, or ''
    target_runs INTEGER NOT NULL,        -- replicates requested
    dataset     TEXT NOT NULL,
    activation  TEXT NOT NULL,
    kernel      TEXT NOT NULL,           -- 'naive' or 'stable' (K-AF only)
    precision   TEXT NOT NULL,           -- 'f32' or 'f64'
    init        TEXT NOT NULL,
    reg         TEXT NOT NULL,
    lambda      REAL NOT NULL,
    opt         TEXT NOT NULL,
    lr          REAL NOT NULL,
    epochs      INTEGER NOT NULL,
    hidden      INTEGER NOT NULL,
    calc_num    INTEGER NOT NULL,
    standardize INTEGER NOT NULL,        -- 0 or 1
    grad_limit  REAL NOT NULL,           -- 0: no limit
    bandwidth   REAL NOT NULL,           -- initial h
    UNIQUE (sweep_id, cell_index)
);

-- One row per finished run, diverged or not.
CREATE TABLE run (
    cell_id       INTEGER NOT NULL REFERENCES cell (cell_id),
    replicate     INTEGER NOT NULL,      -- 0 .. runs_per_cell - 1
    seed          INTEGER NOT NULL,      -- the run's own key (signed 64)
    diverged      INTEGER NOT NULL,      -- 0 or 1
    cause         TEXT NOT NULL,         -- 'none', 'kernel_underflow',
                                         -- 'nonfinite_loss',
                                         -- 'nonfinite_grad', 'grad_limit'
    step          INTEGER,               -- 0-based step of divergence
    steps         INTEGER NOT NULL,      -- steps taken
    train_loss    REAL,                  -- MSE at the last step taken
    val_loss      REAL,                  -- validation MSE at the end
    accuracy      REAL,                  -- validation, classification
    val_mae       REAL,                  -- validation, regression
    max_grad_norm REAL,
    bandwidth     REAL,                  -- final h (K-AF)
    zero_rows     INTEGER NOT NULL,      -- rows with all weights 0
    wall_us       REAL NOT NULL,         -- time of this run alone
    PRIMARY KEY (cell_id, replicate)
) WITHOUT ROWID;

-- Per-epoch losses of runs whose sweep asked for traces.
CREATE TABLE trace (
    cell_id    INTEGER NOT NULL,
    replicate  INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    train_loss REAL,
    val_loss   REAL,
    grad_norm  REAL,
    bandwidth  REAL,
    PRIMARY KEY (cell_id, replicate, epoch)
) WITHOUT ROWID;

-- Snapshots of the learned K-AF link of runs whose sweep asked for them
-- (experiment 2): one frame per snapshot step, the link y_hat_k(z) on a
-- grid of z spanning the range the training rows reached, and the calc
-- rows (z_j, y_j) that define it. The link is evaluated in the stable
-- form, equal to the naive one wherever that is finite.
CREATE TABLE link_frame (
    cell_id    INTEGER NOT NULL,
    replicate  INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,         -- 0-based step
    bandwidth  REAL,                     -- h of that step
    PRIMARY KEY (cell_id, replicate, epoch)
) WITHOUT ROWID;

CREATE TABLE link_point (
    cell_id    INTEGER NOT NULL,
    replicate  INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    output     INTEGER NOT NULL,         -- k, 0-based
    point      INTEGER NOT NULL,         -- 0 .. points - 1, z ascending
    z          REAL,
    yhat       REAL,
    PRIMARY KEY (cell_id, replicate, epoch, output, point)
) WITHOUT ROWID;

CREATE TABLE link_calc (
    cell_id    INTEGER NOT NULL,
    replicate  INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    output     INTEGER NOT NULL,
    j          INTEGER NOT NULL,         -- calc row, in z order
    z          REAL,
    y          REAL,
    PRIMARY KEY (cell_id, replicate, epoch, output, j)
) WITHOUT ROWID;

-- Per cell: runs stored, divergences, rate and its Wilson 95 % interval
-- (z = 1.959963984540054).
CREATE VIEW cell_summary AS
WITH counts AS (
    SELECT c.*, count(r.replicate) AS stored,
           coalesce(sum(r.diverged), 0) AS diverged
    FROM cell AS c LEFT JOIN run AS r ON r.cell_id = c.cell_id
    GROUP BY c.cell_id
), rates AS (
    SELECT *, stored AS runs,
           CASE WHEN stored > 0 THEN 1.0 * diverged / stored END AS rate,
           3.841458820694124 AS z2
    FROM counts
)
SELECT sweep_id, cell_id, cell_index, block, dataset, activation, kernel,
       precision, init, reg, lambda, opt, lr, epochs, hidden, calc_num,
       standardize, grad_limit, bandwidth, target_runs, runs, diverged,
       rate,
       CASE WHEN runs > 0 THEN
           max(0.0, (rate + z2 / (2 * runs) - sqrt(z2) *
                     sqrt(rate * (1 - rate) / runs +
                          z2 / (4.0 * runs * runs))) / (1 + z2 / runs))
       END AS ci_low,
       CASE WHEN runs > 0 THEN
           min(1.0, (rate + z2 / (2 * runs) + sqrt(z2) *
                     sqrt(rate * (1 - rate) / runs +
                          z2 / (4.0 * runs * runs))) / (1 + z2 / runs))
       END AS ci_high
FROM rates;

-- Cells of each sweep ordered by divergence rate, highest first; cells
-- with equal rates share a rank.
CREATE VIEW ranking AS
SELECT rank() OVER (PARTITION BY sweep_id ORDER BY rate DESC) AS rank, *
FROM cell_summary
WHERE runs > 0
ORDER BY sweep_id, rank, cell_index;
