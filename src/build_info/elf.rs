//! The glibc floor of an ELF program: the newest `GLIBC_x.y` version its version-needs
//! section (`.gnu.version_r`) asks the dynamic loader for. Only 64-bit little-endian files
//! are read (the targets this project ships); every offset is checked, nothing trusted.

use std::io::{Read, Seek, SeekFrom};

/// `SHT_GNU_verneed`.
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
/// Sizes past which a section is not what it claims to be (a real one is a few KiB).
const MAX_SECTION: u64 = 1 << 20;
const MAX_SECTIONS: u16 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read the program: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a 64-bit little-endian ELF file")]
    NotElf64,
    #[error("malformed ELF: {0}")]
    Malformed(&'static str),
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(ElfError::Malformed("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ElfError::Malformed("truncated"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(ElfError::Malformed("truncated"))
}

fn read_at(file: &mut (impl Read + Seek), offset: u64, len: u64) -> Result<Vec<u8>, ElfError> {
    if len > MAX_SECTION {
        return Err(ElfError::Malformed("section too large"));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len as usize];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// The newest `GLIBC_` version `file` needs (`2.17`), `None` when it needs none.
pub fn glibc_floor(file: &mut (impl Read + Seek)) -> Result<Option<String>, ElfError> {
    let mut header = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)
        .map_err(|_| ElfError::NotElf64)?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(ElfError::NotElf64);
    }
    let (shoff, shentsize, shnum) = (
        u64_at(&header, 0x28)?,
        u64::from(u16_at(&header, 0x3a)?),
        u16_at(&header, 0x3c)?,
    );
    if shnum > MAX_SECTIONS || (shnum > 0 && shentsize < 64) {
        return Err(ElfError::Malformed("section header table"));
    }
    let table = read_at(file, shoff, shentsize * u64::from(shnum))?;
    let section = |i: usize| -> Result<(u32, u64, u64, u32, u32), ElfError> {
        let at = i * shentsize as usize;
        Ok((
            u32_at(&table, at + 4)?,
            u64_at(&table, at + 24)?,
            u64_at(&table, at + 32)?,
            u32_at(&table, at + 40)?,
            u32_at(&table, at + 44)?,
        ))
    };
    let mut newest: Option<Vec<u32>> = None;
    for i in 0..usize::from(shnum) {
        let (kind, offset, size, link, entries) = section(i)?;
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let (_, str_offset, str_size, _, _) = section(link as usize)?;
        let needs = read_at(file, offset, size)?;
        let strings = read_at(file, str_offset, str_size)?;
        for name in version_names(&needs, &strings, entries)? {
            if let Some(v) = name.strip_prefix("GLIBC_").and_then(parse_version)
                && newest.as_ref().is_none_or(|n| v > *n)
            {
                newest = Some(v);
            }
        }
    }
    Ok(newest.map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")))
}

/// The version names of every `Verneed` entry's `Vernaux` chain.
fn version_names<'a>(
    needs: &[u8],
    strings: &'a [u8],
    entries: u32,
) -> Result<Vec<&'a str>, ElfError> {
    let mut names = Vec::new();
    let mut at = 0usize;
    for _ in 0..entries.min(1024) {
        let count = u16_at(needs, at + 2)?;
        let mut aux = at + u32_at(needs, at + 8)? as usize;
        for _ in 0..count.min(1024) {
            let name = u32_at(needs, aux + 8)? as usize;
            let tail = strings
                .get(name..)
                .ok_or(ElfError::Malformed("name outside the string table"))?;
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            if let Ok(s) = std::str::from_utf8(&tail[..end]) {
                names.push(s);
            }
            match u32_at(needs, aux + 12)? {
                0 => break,
                next => aux += next as usize,
            }
        }
        match u32_at(needs, at + 12)? {
            0 => break,
            next => at += next as usize,
        }
    }
    Ok(names)
}

/// `2.17` -> [2, 17]; anything else (`GLIBC_PRIVATE`) -> None.
fn parse_version(s: &str) -> Option<Vec<u32>> {
    s.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal ELF: a string table and a version-needs section naming `versions` of libc.
    fn elf(versions: &[&str]) -> Vec<u8> {
        let mut strings = b"\0libc.so.6\0".to_vec();
        let mut needs = Vec::new();
        // Verneed: version 1, count, file name at 1, aux right after (16 bytes), no next.
        needs.extend(1u16.to_le_bytes());
        needs.extend((versions.len() as u16).to_le_bytes());
        needs.extend(1u32.to_le_bytes());
        needs.extend(16u32.to_le_bytes());
        needs.extend(0u32.to_le_bytes());
        for (i, v) in versions.iter().enumerate() {
            let name = strings.len() as u32;
            strings.extend(v.as_bytes());
            strings.push(0);
            let next: u32 = if i + 1 == versions.len() { 0 } else { 16 };
            needs.extend(0u32.to_le_bytes()); // hash
            needs.extend(0u16.to_le_bytes()); // flags
            needs.extend((i as u16 + 2).to_le_bytes()); // other
            needs.extend(name.to_le_bytes());
            needs.extend(next.to_le_bytes());
        }
        let strings_at = 64u64;
        let needs_at = strings_at + strings.len() as u64;
        let table_at = needs_at + needs.len() as u64;
        let mut out = vec![0u8; 64];
        out[..6].copy_from_slice(b"\x7fELF\x02\x01");
        out[0x28..0x30].copy_from_slice(&table_at.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        out.extend(&strings);
        out.extend(&needs);
        let header = |kind: u32, offset: u64, size: u64, link: u32, info: u32| {
            let mut h = vec![0u8; 64];
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            h[44..48].copy_from_slice(&info.to_le_bytes());
            h
        };
        out.extend(header(0, 0, 0, 0, 0));
        out.extend(header(3, strings_at, strings.len() as u64, 0, 0));
        out.extend(header(SHT_GNU_VERNEED, needs_at, needs.len() as u64, 1, 1));
        out
    }

    #[test]
    fn the_newest_glibc_version_is_the_floor() {
        let file = elf(&["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_PRIVATE", "GLIBC_2.3.4"]);
        let floor = glibc_floor(&mut Cursor::new(file)).expect("parses");
        assert_eq!(floor.as_deref(), Some("2.17"));
        let none = glibc_floor(&mut Cursor::new(elf(&[]))).expect("parses");
        assert_eq!(none, None);
    }

    #[test]
    fn garbage_and_truncated_files_are_errors_not_panics() {
        assert!(matches!(
            glibc_floor(&mut Cursor::new(b"#!/bin/sh\n".to_vec())),
            Err(ElfError::NotElf64)
        ));
        let whole = elf(&["GLIBC_2.17"]);
        for cut in [70, 90, whole.len() - 100, whole.len() - 1] {
            assert!(glibc_floor(&mut Cursor::new(whole[..cut].to_vec())).is_err());
        }
        // Offsets pointing anywhere.
        let mut bad = whole.clone();
        let table = bad.len() - 64;
        bad[table + 24..table + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(glibc_floor(&mut Cursor::new(bad)).is_err());
        for seed in 0..200u64 {
            let mut noisy = whole.clone();
            let i = 64 + (seed as usize * 7919) % (whole.len() - 64);
            noisy[i] ^= (seed as u8) | 1;
            let _ = glibc_floor(&mut Cursor::new(noisy));
        }
    }

    /// The same answer as binutils on a real program (this test binary).
    #[test]
    fn agrees_with_objdump_on_this_program() {
        let exe = std::env::current_exe().expect("exe");
        let Ok(out) = std::process::Command::new("objdump")
            .arg("-T")
            .arg(&exe)
            .output()
        else {
            eprintln!("skipped: no objdump");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let newest = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(|w| w.strip_prefix("GLIBC_").and_then(parse_version))
            .max();
        let mut file = std::fs::File::open(&exe).expect("open");
        let ours = glibc_floor(&mut file).expect("parses");
        assert_eq!(
            ours.as_deref().and_then(parse_version),
            newest,
            "objdump and our reader disagree"
        );
    }
}
