//! Why a command failed, which exit code that means, and how it is told to the user.

use std::io;
use std::process::ExitCode;

/// A failed command. Commands return it up to `main`, which prints it and exits; nothing
/// deeper prints errors or exits.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Corruption in the log, or records read back that differ from what was written: exit 1.
    Damage(String),
    /// Bad input, an I/O failure, or an operation the library refused: exit 2.
    Trouble(String),
    /// Whoever reads our stdout went away (`vault cat DIR | head`): exit 0 without a word,
    /// as the reader asked for no more.
    StdoutClosed,
}

impl Failure {
    /// A failure of exit code 2 with this message.
    pub(crate) fn trouble(msg: impl Into<String>) -> Self {
        Self::Trouble(msg.into())
    }

    /// An error writing to stdout: quiet if the reader closed the pipe.
    pub(crate) fn stdout(e: &io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Self::StdoutClosed
        } else {
            Self::Trouble(format!("cannot write to stdout: {e}"))
        }
    }

    /// Adds what the user should also know after the message (`…; note`).
    pub(crate) fn with_note(self, note: &str) -> Self {
        match self {
            Self::Damage(m) => Self::Damage(format!("{m}; {note}")),
            Self::Trouble(m) => Self::Trouble(format!("{m}; {note}")),
            Self::StdoutClosed => Self::StdoutClosed,
        }
    }

    /// Says where the failure happened before the message (`context: …`).
    pub(crate) fn with_note_before(self, context: &str) -> Self {
        match self {
            Self::Damage(m) => Self::Damage(format!("{context}: {m}")),
            Self::Trouble(m) => Self::Trouble(format!("{context}: {m}")),
            Self::StdoutClosed => Self::StdoutClosed,
        }
    }

    /// Prints the message on stderr and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        let (msg, code) = match self {
            Self::Damage(m) => (m, 1),
            Self::Trouble(m) => (m, 2),
            Self::StdoutClosed => return ExitCode::SUCCESS,
        };
        // If stderr is gone too there is nobody left to tell.
        let _ = io::Write::write_all(&mut io::stderr(), format!("vault: {msg}\n").as_bytes());
        ExitCode::from(code)
    }
}

impl From<&vault_core::Error> for Failure {
    fn from(e: &vault_core::Error) -> Self {
        use vault_core::Error as E;
        match e {
            E::Corruption { .. } => Self::Damage(e.to_string()),
            E::Io { source, .. } => Self::Trouble(format!("{e}{}", io_hint(source))),
            _ => Self::Trouble(e.to_string()),
        }
    }
}

impl From<vault_core::Error> for Failure {
    fn from(e: vault_core::Error) -> Self {
        Self::from(&e)
    }
}

/// What the user can do about an I/O error (the library's message says what failed).
pub(crate) fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => ": check the path",
        io::ErrorKind::PermissionDenied => ": check the permissions of the directory and its files",
        io::ErrorKind::StorageFull => ": free some space on that file system",
        io::ErrorKind::NotADirectory => ": give the directory that holds the gs-vault-*.log files",
        io::ErrorKind::ReadOnlyFilesystem => ": use a directory on a writable file system",
        _ => "",
    }
}
