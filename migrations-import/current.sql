-- The generator's schema in its current form, as a fresh installation creates it: the same
-- table that 0001 to 0004 lead to.
CREATE TABLE crypto_report (
    id              SERIAL PRIMARY KEY,
    html_content    TEXT NOT NULL,
    css_content     TEXT,
    js_content      TEXT,
    html_content_en TEXT,
    js_content_en   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
