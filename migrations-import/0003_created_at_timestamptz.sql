-- Step 2: `created_at` becomes an instant. The old values were UTC wall-clock times, so they
-- are read as UTC whatever the session's time zone is.
ALTER TABLE crypto_report
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at SET DEFAULT now();
