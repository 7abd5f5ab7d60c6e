//! Authentication and authorization: Mosquitto's `password_file` and `acl_file`.
//!
//! Everything here decides and does nothing else (STYLE rule 8): [`PasswordFile::verify`]
//! answers whether a username and password may connect, and [`Acl::check`] whether a
//! client may publish to a topic, subscribe to a filter or receive a message. The only
//! I/O is the `load(path)` of each file, which reads the text and hands it to the pure
//! parser; the broker (connection handling, SIGHUP reload) calls them and keeps the
//! result behind its shared state. Both formats are Mosquitto's, so the same files drive
//! Mosquitto and Midge side by side, and `midge passwd` writes files Mosquitto reads.
//!
//! - [`passwd`]: the password file, its hash formats, and hashing for `midge passwd`.
//! - [`acl`]: the ACL file and the access decision.
//! - [`cidr`]: address ranges for the ACL's `address` sections (a Midge extension).

pub mod acl;
pub mod cidr;
pub mod passwd;

pub use acl::{Access, Acl, AclError, ClientIdentity};
pub use cidr::{Cidr, CidrError};
pub use passwd::{HashAlgorithm, PasswdError, PasswordFile, PasswordHash};
