-- One factor's effect in the latest sweep: the divergence rate per value
-- of one axis, pooled over every cell with that value, with its Wilson
-- 95 % interval. The axis is the parameter :axis, a column of table cell
-- (block, dataset, activation, kernel, precision, init, reg, lambda, opt,
-- lr, epochs, hidden, calc_num, standardize, grad_limit, bandwidth); init
-- when it is not set. Values come in grid order.
--
--   sqlite3 -readonly -header -column kaf.db \
--       < schemas/queries/factor_effect.sql
--   sqlite3 -readonly -header -column -cmd ".parameter set :axis opt" \
--       kaf.db < schemas/queries/factor_effect.sql
--
-- An unknown axis gives one row whose value is NULL. `kaf report` adds
-- the chi-square test of whether the axis matters.
WITH pooled AS (
    SELECT CASE coalesce(:axis, 'init')
               WHEN 'block' THEN c.block
               WHEN 'dataset' THEN c.dataset
               WHEN 'activation' THEN c.activation
               WHEN 'kernel' THEN c.kernel
               WHEN 'precision' THEN c.precision
               WHEN 'init' THEN c.init
               WHEN 'reg' THEN c.reg
               WHEN 'lambda' THEN c.lambda
               WHEN 'opt' THEN c.opt
               WHEN 'lr' THEN c.lr
               WHEN 'epochs' THEN c.epochs
               WHEN 'hidden' THEN c.hidden
               WHEN 'calc_num' THEN c.calc_num
               WHEN 'standardize' THEN c.standardize
               WHEN 'grad_limit' THEN c.grad_limit
               WHEN 'bandwidth' THEN c.bandwidth
           END AS value,
           count(*) AS runs,
           sum(r.diverged) AS diverged,
           min(c.cell_index) AS first_cell
    FROM cell AS c JOIN run AS r ON r.cell_id = c.cell_id
    WHERE c.sweep_id = (SELECT max(sweep_id) FROM sweep)
    GROUP BY value
), rates AS (
    SELECT *, 1.0 * diverged / runs AS rate,
           3.841458820694124 AS z2
    FROM pooled
)
SELECT coalesce(:axis, 'init') AS axis,
       value,
       runs,
       diverged,
       round(rate, 4) AS rate,
       round(max(0.0, (rate + z2 / (2 * runs) - sqrt(z2) *
                       sqrt(rate * (1 - rate) / runs +
                            z2 / (4.0 * runs * runs))) / (1 + z2 / runs)),
             4) AS ci_low,
       round(min(1.0, (rate + z2 / (2 * runs) + sqrt(z2) *
                       sqrt(rate * (1 - rate) / runs +
                            z2 / (4.0 * runs * runs))) / (1 + z2 / runs)),
             4) AS ci_high
FROM rates
ORDER BY first_cell;
