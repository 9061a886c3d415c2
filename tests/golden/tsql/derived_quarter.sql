WITH s0 AS (
  SELECT
    CAST(DATETRUNC(QUARTER, t.closed_at) AS DATE) AS period,
    SUM(CASE WHEN t.stage = 'won' THEN t.amount END) AS s0_m0,
    COUNT(CASE WHEN t.stage = 'won' THEN 1 END) AS s0_m1,
    COUNT(*) AS s0_m2
  FROM opportunities AS t
  WHERE
    t.closed_at >= CAST('2024-01-01 00:00:00' AS DATETIME2)
    AND t.closed_at < CAST('2025-01-01 00:00:00' AS DATETIME2)
  GROUP BY
    CAST(DATETRUNC(QUARTER, t.closed_at) AS DATE)
), s1 AS (
  SELECT
    CAST(DATETRUNC(QUARTER, t.month) AS DATE) AS period,
    SUM(t.amount) AS s1_m0
  FROM spend AS t
  WHERE
    t.month >= CAST('2024-01-01' AS DATE) AND t.month < CAST('2025-01-01' AS DATE)
  GROUP BY
    CAST(DATETRUNC(QUARTER, t.month) AS DATE)
), grid AS (
  SELECT
    period AS period
  FROM (
    SELECT
      CAST(p AS DATE) AS period
    FROM (VALUES
      ('2024-01-01'),
      ('2024-04-01'),
      ('2024-07-01'),
      ('2024-10-01')) AS spine_values(p)
  ) AS spine
), l0 AS (
  SELECT
    grid.period AS period,
    s0.s0_m0 AS k0,
    COALESCE(s0.s0_m1, 0) AS k1,
    s1.s1_m0 AS k3,
    COALESCE(s0.s0_m2, 0) AS k4
  FROM grid
  LEFT JOIN s0
    ON s0.period = grid.period
  LEFT JOIN s1
    ON s1.period = grid.period
), l1 AS (
  SELECT
    *,
    CAST(l0.k0 AS FLOAT) / NULLIF(l0.k1, 0) AS k2,
    CAST(l0.k3 AS FLOAT) / NULLIF(l0.k4, 0) AS k5
  FROM l0
)
SELECT
  l1.period,
  l1.k2,
  l1.k5
FROM l1
