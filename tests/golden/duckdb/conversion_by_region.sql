WITH s0 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.created_at) AS DATE) AS period,
    t.region AS d0,
    COUNT(*) AS s0_m0,
    COUNT(CASE WHEN t.kpi__converted = 1 THEN 1 END) AS s0_m1
  FROM (
    SELECT
      kpi__base.region,
      kpi__base.created_at,
      CASE
        WHEN EXISTS(
          SELECT
            1
          FROM opportunities AS t
          WHERE
            t.account_id = kpi__base.account_id
            AND t.closed_at >= kpi__base.created_at
            AND t.closed_at <= kpi__base.created_at + INTERVAL 90 DAY
            AND t.closed_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
            AND t.closed_at < CAST('2024-06-30 00:00:00' AS TIMESTAMP)
            AND (
              t.stage = 'won'
            )
        )
        THEN 1
        ELSE 0
      END AS kpi__converted
    FROM opportunities AS kpi__base
    WHERE
      NOT kpi__base.created_at IS NULL
      AND kpi__base.created_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
      AND kpi__base.created_at < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
  ) AS t
  WHERE
    t.created_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
    AND t.created_at < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
  GROUP BY
    CAST(DATE_TRUNC('MONTH', t.created_at) AS DATE),
    t.region
), grid AS (
  SELECT
    spine.period,
    combos.d0,
    combos.f0
  FROM (
    SELECT
      CAST(p AS DATE) AS period
    FROM GENERATE_SERIES(CAST('2024-01-01' AS DATE), CAST('2024-03-01' AS DATE), INTERVAL 1 MONTH) AS spine_values(p)
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
  CAST(COALESCE(s0.s0_m1, 0) AS DOUBLE) / NULLIF(COALESCE(s0.s0_m0, 0), 0) AS k0
FROM grid
LEFT JOIN s0
  ON s0.period = grid.period AND s0.d0 IS NOT DISTINCT FROM grid.d0
