WITH s0 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) AS period,
    t.region AS d0,
    SUM(CASE WHEN t.stage = 'won' THEN t.amount END) AS s0_m1,
    COUNT(CASE WHEN t.stage = 'won' THEN 1 END) AS s0_m2
  FROM opportunities AS t
  WHERE
    t.closed_at < CAST('2024-06-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE),
    t.region
), s1 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) AS period,
    t.region AS d0,
    COUNT(*) AS s1_m0
  FROM opportunities AS t
  WHERE
    t.closed_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
    AND t.closed_at < CAST('2024-06-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE),
    t.region
), s2_edge AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) AS period,
    MAX(t.closed_at) AS last_edge
  FROM opportunities AS t
  WHERE
    t.closed_at >= CAST('2024-03-01 00:00:00' AS TIMESTAMP)
    AND t.closed_at < CAST('2024-06-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE)
), s2 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) AS period,
    t.region AS d0,
    SUM(CASE WHEN t.closed_at = s2_edge.last_edge THEN t.amount END) AS s2_m1
  FROM opportunities AS t
  LEFT JOIN s2_edge
    ON CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE) = s2_edge.period
  WHERE
    t.closed_at >= CAST('2024-03-01 00:00:00' AS TIMESTAMP)
    AND t.closed_at < CAST('2024-06-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.closed_at) AS DATE),
    t.region
), grid AS (
  SELECT
    spine.period,
    combos.d0,
    combos.f0,
    combos.f1,
    combos.f2
  FROM (
    SELECT
      period
    FROM s0
    WHERE
      period < CAST('2024-03-01' AS DATE)
    UNION
    SELECT
      period
    FROM s1
    WHERE
      period < CAST('2024-03-01' AS DATE)
    UNION
    SELECT
      period
    FROM s2
    WHERE
      period < CAST('2024-03-01' AS DATE)
    UNION
    SELECT
      CAST(p AS DATE) AS period
    FROM VALUES
      ('2024-03-01'),
      ('2024-04-01'),
      ('2024-05-01') AS spine_values(p)
  ) AS spine
  CROSS JOIN (
    SELECT
      d0,
      MAX(f0) AS f0,
      MAX(f1) AS f1,
      MAX(f2) AS f2
    FROM (
      SELECT
        d0,
        1 AS f0,
        0 AS f1,
        0 AS f2
      FROM s0
      WHERE
        period >= CAST('2024-03-01' AS DATE)
      UNION ALL
      SELECT
        d0,
        0 AS f0,
        1 AS f1,
        0 AS f2
      FROM s1
      WHERE
        period >= CAST('2024-03-01' AS DATE)
      UNION ALL
      SELECT
        d0,
        0 AS f0,
        0 AS f1,
        1 AS f2
      FROM s2
    ) AS seen
    GROUP BY
      d0
  ) AS combos
), l0 AS (
  SELECT
    grid.period,
    grid.d0,
    grid.f0,
    grid.f1,
    grid.f2,
    ROW_NUMBER() OVER (PARTITION BY grid.d0 ORDER BY grid.period) AS n,
    s0.s0_m1 AS k0,
    COALESCE(s1.s1_m0, 0) AS k2,
    COALESCE(s0.s0_m2, 0) AS k4,
    s2.s2_m1 AS k7
  FROM grid
  LEFT JOIN s0
    ON s0.period = grid.period AND s0.d0 IS NOT DISTINCT FROM grid.d0
  LEFT JOIN s1
    ON s1.period = grid.period AND s1.d0 IS NOT DISTINCT FROM grid.d0
  LEFT JOIN s2
    ON s2.period = grid.period AND s2.d0 IS NOT DISTINCT FROM grid.d0
), l1 AS (
  SELECT
    *,
    CAST(l0.k0 - LAG(l0.k0, 1) OVER (PARTITION BY l0.d0 ORDER BY l0.period) AS DOUBLE) / NULLIF(LAG(l0.k0, 1) OVER (PARTITION BY l0.d0 ORDER BY l0.period), 0) AS k1,
    AVG(CAST(l0.k2 AS DOUBLE)) OVER (PARTITION BY l0.d0 ORDER BY l0.period ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS k3,
    l0.n - COALESCE(
      MAX(CASE WHEN l0.k4 >= 1 THEN NULL ELSE l0.n END) OVER (
        PARTITION BY l0.d0
        ORDER BY l0.period
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ),
      0
    ) AS k5,
    SUM(l0.k0) OVER (
      PARTITION BY l0.d0
      ORDER BY l0.period
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS k6
  FROM l0
)
SELECT
  l1.period,
  l1.d0,
  l1.f0,
  l1.f1,
  l1.f2,
  l1.k1,
  l1.k3,
  l1.k5,
  l1.k6,
  l1.k7
FROM l1
WHERE
  l1.period >= CAST('2024-03-01' AS DATE)
