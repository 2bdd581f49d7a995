//! libpq's password file: `hostname:port:database:username:password` lines (`*` matches
//! anything, `\:` and `\\` escape, `#` starts a comment), found at `passfile=` in the URL, else
//! `PGPASSFILE`, else `~/.pgpass`. As libpq does, a file that others may read is ignored.

use std::path::{Path, PathBuf};

/// Where the password file is: the URL's `passfile`, else `PGPASSFILE`, else `~/.pgpass`.
pub fn location(from_url: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = from_url {
        return Some(p.to_owned());
    }
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".pgpass"))
}

/// The password `file` holds for this connection, if it is there and private to its owner.
pub fn lookup(file: &Path, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let Ok(meta) = std::fs::metadata(file) else {
        return None;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %file.display(), "the password file may be read by others, so it is ignored (chmod 600 it)");
            return None;
        }
    }
    if !meta.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    find(&text, host, port, database, user)
}

/// The password of the first line of `text` that matches.
fn find(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            f[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut f| f.swap_remove(4))
}

/// The five fields of a line (the last takes the rest of the line), unescaped.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next()?),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:other:reader:wrong\n\
                    db.example:5432:reports:reader:pa\\:ss\\\\word:with colon\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            find(text, "db.example", 5432, "reports", "reader").as_deref(),
            Some("pa:ss\\word:with colon")
        );
        assert_eq!(
            find(text, "elsewhere", 6543, "x", "y").as_deref(),
            Some("fallback")
        );
        assert_eq!(find("a:1:b", "a", 1, "b", "c"), None, "too few fields");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:secret\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            lookup(&file, "h", 5432, "d", "u").as_deref(),
            Some("secret")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(lookup(&file, "h", 5432, "d", "u"), None);
    }
}
