-- The runs of the latest sweep that diverged at step 0, the very first
-- full-batch step, and why: the cell's configuration, the cause the
-- engine recorded (kernel_underflow: every K-AF kernel weight of some row
-- underflowed, a 0/0; nonfinite_loss; nonfinite_grad; grad_limit) and the
-- evidence: how many rows had all kernel weights zero, the loss, the
-- largest gradient norm and the bandwidth h when the run stopped.
--
--   sqlite3 -readonly -header -column kaf.db \
--       < schemas/queries/diverged_at_step0.sql
--
-- Count them per cause instead by wrapping it:
--   SELECT cause, count(*) FROM (<this query>) GROUP BY cause;
SELECT c.cell_index,
       c.init AS initializer,
       c.opt AS optimizer,
       c.reg AS regularizer,
       r.replicate,
       r.seed,
       r.cause,
       r.zero_rows,
       r.train_loss,
       r.max_grad_norm,
       r.bandwidth
FROM run AS r JOIN cell AS c ON c.cell_id = r.cell_id
WHERE c.sweep_id = (SELECT max(sweep_id) FROM sweep)
  AND r.diverged = 1
  AND r.step = 0
ORDER BY c.cell_index, r.replicate;
