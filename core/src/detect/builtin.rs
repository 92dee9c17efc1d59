//! The shipped signature set, embedded at build time (build.rs).
include!(concat!(env!("OUT_DIR"), "/builtin_signatures.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn ships_the_signature_files() {
        assert!(super::BUILTIN.len() >= 50);
        assert!(super::BUILTIN
            .iter()
            .any(|(name, text)| *name == "ssh.toml" && text.contains("protocol = \"ssh\"")));
    }
}
