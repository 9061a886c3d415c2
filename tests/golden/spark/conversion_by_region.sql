WITH s0 AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', t.created_at) AS DATE) AS period,
    t.region AS d0,
    COUNT(*) AS s0_m0,
    COUNT(CASE WHEN t.kpi__converted = 1 THEN 1 END) AS s0_m1
  FROM (
    SELECT
      kpi__marked.region,
      kpi__marked.created_at,
      CASE WHEN NOT kpi__next IS NULL AND kpi__next <= kpi__deadline THEN 1 ELSE 0 END AS kpi__converted
    FROM (
      SELECT
        *,
        MIN(CASE WHEN kpi__kind = 1 THEN kpi__at END) OVER (
          PARTITION BY kpi__entity
          ORDER BY kpi__at, kpi__kind
          ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING
        ) AS kpi__next
      FROM (
        SELECT
          t.region,
          t.created_at,
          t.account_id AS kpi__entity,
          t.created_at AS kpi__at,
          t.created_at + INTERVAL 90 DAY AS kpi__deadline,
          0 AS kpi__kind
        FROM opportunities AS t
        WHERE
          NOT t.created_at IS NULL
          AND t.created_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
          AND t.created_at < CAST('2024-04-01 00:00:00' AS TIMESTAMP)
        UNION ALL
        SELECT
          NULL AS region,
          NULL AS created_at,
          t.account_id AS kpi__entity,
          t.closed_at AS kpi__at,
          NULL AS kpi__deadline,
          1 AS kpi__kind
        FROM opportunities AS t
        WHERE
          NOT t.account_id IS NULL
          AND NOT t.closed_at IS NULL
          AND t.closed_at >= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
          AND t.closed_at < CAST('2024-06-30 00:00:00' AS TIMESTAMP)
          AND (
            t.stage = 'won'
          )
      ) AS kpi__events
    ) AS kpi__marked
    WHERE
      kpi__kind = 0
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
    FROM VALUES
      ('2024-01-01'),
      ('2024-02-01'),
      ('2024-03-01') AS spine_values(p)
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
