WITH s0 AS (
  SELECT
    j_accounts.segment AS d0,
    COUNT(*) AS s0_m0,
    SUM(CASE WHEN t.stage = 'won' THEN t.amount END) AS s0_m1
  FROM opportunities AS t
  LEFT JOIN accounts AS j_accounts
    ON t.account_id = j_accounts.account_id
  WHERE
    t.closed_at >= CAST('2024-01-01 00:00:00' AS DATETIME)
    AND t.closed_at < CAST('2025-01-01 00:00:00' AS DATETIME)
    AND (
      t.region <> 'internal'
    )
  GROUP BY
    j_accounts.segment
), grid AS (
  SELECT
    d0,
    1 AS f0
  FROM s0
  GROUP BY
    d0
)
SELECT
  grid.d0,
  grid.f0,
  COALESCE(s0.s0_m0, 0) AS k0,
  s0.s0_m1 AS k1
FROM grid
LEFT JOIN s0
  ON s0.d0 IS NOT DISTINCT FROM grid.d0
