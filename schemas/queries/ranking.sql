-- The ranking of the latest sweep, in the original study's form (rank,
-- initializer, optimizer, regularizer, divergence count, divergence
-- probability), with the runs and the Wilson 95 % interval of each cell.
-- Highest divergence probability first; equal rates share a rank.
--
--   sqlite3 -readonly -header -column kaf.db < schemas/queries/ranking.sql
--
-- For another sweep, replace the subquery by its sweep_id. `kaf report`
-- adds the test of every cell against rank 1.
SELECT rank,
       init AS initializer,
       opt AS optimizer,
       reg AS regularizer,
       diverged AS divergence_count,
       round(rate, 4) AS divergence_probability,
       runs,
       round(ci_low, 4) AS ci_low,
       round(ci_high, 4) AS ci_high
FROM ranking
WHERE sweep_id = (SELECT max(sweep_id) FROM sweep)
ORDER BY rank, cell_index;
