-- The generator's first schema: table `report`, Vietnamese only, `created_at` without time
-- zone (the generator wrote UTC wall-clock times into it).
CREATE TABLE report (
    id           SERIAL PRIMARY KEY,
    html_content TEXT NOT NULL,
    css_content  TEXT,
    js_content   TEXT,
    created_at   TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
