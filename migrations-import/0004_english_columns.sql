-- Step 3: English versions. Older rows keep NULL (the site then shows the Vietnamese HTML);
-- newer reports usually leave js_content_en NULL too, their JS being bilingual.
ALTER TABLE crypto_report
    ADD COLUMN html_content_en TEXT,
    ADD COLUMN js_content_en   TEXT;
