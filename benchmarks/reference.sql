-- Hand-written DuckDB SQL computing the totals of benchmarks/model-30.yaml, the reference the
-- batch engine is measured against. Same semantics: events before as_of, half-life 30 days,
-- caps keep the latest events, hundredths of a point rounded half up. Like the engine on a
-- validated dataset (leadscore's readers reject duplicate event ids and events of unknown
-- leads on the way in), it does not dedupe or check lead ids again. $AS_OF is replaced.
WITH
ev AS (
    SELECT event_id, lead_id, type, ts, url, content_stage,
           date_diff('microsecond', ts, TIMESTAMP '$AS_OF') AS age
    FROM events
    WHERE ts < TIMESTAMP '$AS_OF'
),
rules (rule, type, url_has, stage, cents, max_count, cap_cents, window_us) AS (
    VALUES
    ('visit',        'page_view',            NULL,        NULL,   100,  20,   NULL, NULL),
    ('pricing',      'page_view',            'pricing',   NULL,   1000, 5,    NULL, NULL),
    ('demo_page',    'page_view',            '/demo',     NULL,   800,  3,    NULL, NULL),
    ('product_page', 'page_view',            '/product/', NULL,   300,  NULL, 1500, NULL),
    ('careers',      'page_view',            'careers',   NULL,   -500, 2,    NULL, NULL),
    ('blog',         'page_view',            '/blog/',    NULL,   100,  NULL, 500,  NULL),
    ('open',         'email_open',           NULL,        NULL,   100,  NULL, 1000, NULL),
    ('click',        'email_click',          NULL,        NULL,   300,  NULL, 1500, NULL),
    ('dl_tofu',      'download',             NULL,        'tofu', 500,  NULL, NULL, NULL),
    ('dl_mofu',      'download',             NULL,        'mofu', 1000, NULL, NULL, NULL),
    ('dl_bofu',      'download',             NULL,        'bofu', 2000, 3,    NULL, NULL),
    ('webinar',      'webinar_attended',     NULL,        NULL,   1500, 3,    NULL, NULL),
    ('form',         'form_submit',          NULL,        NULL,   1000, NULL, NULL, 7776000000000),
    ('demo',         'demo_request',         NULL,        NULL,   4000, 1,    NULL, NULL),
    ('newsletter',   'newsletter_subscribe', NULL,        NULL,   500,  1,    NULL, NULL),
    ('chat',         'chat',                 NULL,        NULL,   800,  3,    NULL, NULL),
    ('ad',           'ad_click',             NULL,        NULL,   200,  NULL, 1000, NULL),
    ('social',       'social_like',          NULL,        NULL,   100,  NULL, 500,  NULL),
    ('unsubscribe',  'unsubscribe',          NULL,        NULL,   -2000, NULL, NULL, NULL),
    ('bounce',       'email_bounce',         NULL,        NULL,   -1000, 1,   NULL, NULL)
),
hits AS (
    SELECT e.lead_id, e.event_id, e.ts, e.age, r.rule, r.cents, r.max_count, r.cap_cents
    FROM ev AS e JOIN rules AS r ON e.type = r.type
    WHERE (r.url_has IS NULL OR contains(lower(e.url), r.url_has))
      AND (r.stage IS NULL OR lower(e.content_stage) = r.stage)
      AND (r.window_us IS NULL OR e.age < r.window_us)
),
kept AS (
    SELECT lead_id, rule, cents, cap_cents, age FROM hits WHERE max_count IS NULL
    UNION ALL
    SELECT lead_id, rule, cents, cap_cents, age FROM hits WHERE max_count IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY lead_id, rule ORDER BY ts DESC, event_id DESC)
            <= max_count
),
rule_sums AS (
    SELECT lead_id, rule, any_value(cap_cents) AS cap,
           sum(floor(cents * pow(0.5, age / 2592000000000.0) + 0.5)) AS s
    FROM kept GROUP BY lead_id, rule
),
behaviour_rules AS (
    SELECT lead_id,
           sum(CASE WHEN cap IS NULL THEN s WHEN s > cap THEN cap WHEN s < -cap THEN -cap
                    ELSE s END) AS b
    FROM rule_sums GROUP BY lead_id
),
activity AS (
    SELECT lead_id, max(ts) AS last_ts,
           count(*) FILTER (WHERE type = 'page_view' AND age < 604800000000) AS visits_7d
    FROM ev GROUP BY lead_id
),
engaged AS (
    SELECT l.account_id, count(DISTINCT e.lead_id) AS n
    FROM ev AS e JOIN leads AS l USING (lead_id)
    WHERE e.age < 2592000000000 AND l.account_id IS NOT NULL
    GROUP BY l.account_id
),
parts AS (
    SELECT
        l.lead_id,
        (CASE WHEN lower(l.job_title) IN ('ceo', 'cto', 'cfo', 'cio', 'coo') THEN 3000 ELSE 0 END)
        + (CASE WHEN contains(lower(l.job_title), 'vp') THEN 2000 ELSE 0 END)
        + (CASE WHEN contains(lower(l.job_title), 'manager') THEN 1000 ELSE 0 END)
        + (CASE WHEN lower(l.job_title) IN ('student', 'intern') THEN -4000 ELSE 0 END)
        + (CASE WHEN lower(l.industry) = 'software' THEN 1500 ELSE 0 END)
        + (CASE WHEN lower(l.industry) = 'financial services' THEN 1000 ELSE 0 END)
        + (CASE WHEN l.employees BETWEEN 50 AND 5000 THEN 1000 ELSE 0 END)
        + (CASE WHEN lower(l.country) IN ('germany', 'austria', 'switzerland') THEN 500 ELSE 0 END)
            AS fit,
        coalesce(b.b, 0)
        + (CASE WHEN a.visits_7d >= 3 THEN 1000 ELSE 0 END)
        + (CASE WHEN date_diff('microsecond', coalesce(a.last_ts, l.created_at),
                               TIMESTAMP '$AS_OF') >= 7776000000000 THEN -1500 ELSE 0 END)
            AS behaviour_raw,
        (CASE WHEN l.account_id IS NULL THEN 0
              WHEN g.n >= 3 THEN 2500 WHEN g.n >= 2 THEN 1000 ELSE 0 END)
        + (CASE WHEN lower(acc.priority) = 'tier1' THEN 2000 ELSE 0 END)
            AS account
    FROM leads AS l
    LEFT JOIN behaviour_rules AS b USING (lead_id)
    LEFT JOIN activity AS a USING (lead_id)
    LEFT JOIN engaged AS g ON g.account_id = l.account_id
    LEFT JOIN accounts AS acc ON acc.account_id = l.account_id
)
SELECT lead_id, (fit + greatest(behaviour_raw, 0) + account) / 100.0 AS total
FROM parts
