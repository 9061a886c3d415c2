WITH s0 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) AS period,
    t.region AS d0,
    COUNT(CASE WHEN t.stage = 'won' THEN 1 END) AS s0_m1,
    COUNT(CASE WHEN t.stage IN ('won', 'lost') THEN 1 END) AS s0_m2
  FROM opportunities AS t
  WHERE
    t.closed_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
    AND t.closed_at < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE),
    t.region
), grid AS (
  SELECT
    spine.period,
    combos.d0,
    combos.f0
  FROM (
    SELECT
      CAST(p AS DATE) AS period
    FROM (
      SELECT
        '2024-01-01' AS p
      UNION ALL
      SELECT
        '2024-02-01'
      UNION ALL
      SELECT
        '2024-03-01'
    ) AS spine_values
  ) AS spine
  CROSS JOIN (
    SELECT
      d0,
      1 AS f0
    FROM s0
    GROUP BY
      d0
  ) AS combos
)
SELECT
  grid.period,
  grid.d0,
  grid.f0,
  CAST(COALESCE(s0.s0_m1, 0) AS DOUBLE PRECISION) / NULLIF(COALESCE(s0.s0_m2, 0), 0) AS k0
FROM grid
LEFT JOIN s0
  ON s0.period = grid.period AND s0.d0 IS NOT DISTINCT FROM grid.d0
