//! The broker's live password files and ACLs, and the per-client access decisions.
//!
//! One [`Security`] per distinct set of listener security settings: one for all
//! listeners, unless `per_listener_settings` gives listeners their own.
//!
//! [`Security`] loads `password_file` and `acl_file` (the pure parsers of `auth/`) at
//! start, keeps them behind one swappable handle, and reloads them on request (SIGHUP in
//! `midge serve`): a reload that fails keeps what was loaded before. Connections ask it
//! to authenticate a CONNECT ([`Security::authenticate`]) and get a [`ClientAuthorizer`]
//! that answers the session's questions (publish, subscribe, receive) with the ACL
//! current at the time of asking, so that a reload applies to connected clients too.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use midge_codec::ReasonCode;

use crate::auth::acl::{self, Access, Acl, AclError, ClientIdentity};
use crate::auth::passwd::{PasswdError, PasswordFile};
use crate::config::SecuritySettings;
use crate::session::Authorizer;

/// Why a password file or an ACL file could not be loaded; the message names the file
/// and the line.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The password file.
    #[error(transparent)]
    Passwd(#[from] PasswdError),
    /// The ACL file.
    #[error(transparent)]
    Acl(#[from] AclError),
}

/// The loaded files: replaced whole on reload, never changed in place.
#[derive(Debug, Default)]
struct Loaded {
    passwords: Option<PasswordFile>,
    acl: Option<Acl>,
}

/// The password file and ACL in force, and where they come from.
#[derive(Debug)]
pub(crate) struct Security {
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    allow_anonymous: bool,
    /// Read on every publish and delivery without a lock nor a write to a shared
    /// counter (`ArcSwap`); replaced whole by a reload.
    current: Arc<ArcSwap<Loaded>>,
    /// The authorizer of every client when there is no ACL file: it then holds nothing
    /// of the client's, so they all share one (read-only, so no cache line moves).
    open: Arc<ClientAuthorizer>,
}

impl Security {
    /// Loads the files `settings` names (a listener's: `Config::listener_security`).
    pub(crate) fn load(settings: &SecuritySettings) -> Result<Self, SecurityError> {
        let security = Security {
            password_file: settings.password_file.clone(),
            acl_file: settings.acl_file.clone(),
            allow_anonymous: settings.allow_anonymous,
            current: Arc::new(ArcSwap::from_pointee(Loaded::default())),
            open: Arc::new(ClientAuthorizer { acl: None }),
        };
        security.current.store(Arc::new(security.read()?));
        Ok(security)
    }

    fn read(&self) -> Result<Loaded, SecurityError> {
        Ok(Loaded {
            passwords: self
                .password_file
                .as_deref()
                .map(PasswordFile::load)
                .transpose()?,
            acl: self.acl_file.as_deref().map(Acl::load).transpose()?,
        })
    }

    /// Reads both files again and swaps them in together; on error keeps the previous
    /// ones and returns the error.
    pub(crate) fn reload(&self) -> Result<(), SecurityError> {
        let loaded = self.read()?;
        self.current.store(Arc::new(loaded));
        Ok(())
    }

    fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// Decides whether a CONNECT's credentials may connect; `Err` is the CONNACK reason:
    /// 0x86 Bad User Name or Password (3.1.1: 4) for a user the password file does not
    /// know or a wrong password, 0x87 Not authorized (3.1.1: 5) for an anonymous client
    /// when `allow_anonymous` is false. Verifying costs tens of milliseconds (argon2id):
    /// it runs on a blocking thread.
    pub(crate) async fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ReasonCode> {
        let Some(username) = username else {
            return if self.allow_anonymous {
                Ok(())
            } else {
                Err(ReasonCode::NotAuthorized)
            };
        };
        let loaded = self.current();
        if loaded.passwords.is_none() {
            // No password file: a username is an identity for the ACL, not checked.
            return Ok(());
        }
        let username = username.to_owned();
        let password = password.unwrap_or_default().to_vec();
        let verified = tokio::task::spawn_blocking(move || {
            loaded
                .passwords
                .as_ref()
                .is_some_and(|p| p.verify(&username, &password))
        })
        .await
        .unwrap_or(false);
        if verified {
            Ok(())
        } else {
            Err(ReasonCode::BadUserNameOrPassword)
        }
    }

    /// The access decisions for one client; `address` is the client's real address (the
    /// PROXY header's when the listener takes one), `None` for a Unix socket client.
    pub(crate) fn authorizer(
        &self,
        client_id: &str,
        username: Option<&str>,
        address: Option<IpAddr>,
    ) -> Arc<ClientAuthorizer> {
        // A reload reads the same files: without an ACL file there is never an ACL.
        if self.acl_file.is_none() {
            return self.open.clone();
        }
        Arc::new(ClientAuthorizer {
            acl: Some(Box::new(AclClient {
                current: self.current.clone(),
                client_id: client_id.into(),
                username: username.map(Into::into),
                address,
            })),
        })
    }

    /// The paths, for log lines.
    pub(crate) fn files(&self) -> (Option<&Path>, Option<&Path>) {
        (self.password_file.as_deref(), self.acl_file.as_deref())
    }
}

/// One client's access decisions: the session's [`Authorizer`].
#[derive(Debug)]
pub(crate) struct ClientAuthorizer {
    /// The live ACL and the client's identity for it; `None` without an ACL file, so
    /// that a client then keeps no copy of its identity, and a check reads no ACL.
    acl: Option<Box<AclClient>>,
}

/// What an ACL check needs.
#[derive(Debug)]
struct AclClient {
    current: Arc<ArcSwap<Loaded>>,
    client_id: Box<str>,
    username: Option<Box<str>>,
    /// For the ACL's `address` sections.
    address: Option<IpAddr>,
}

impl ClientAuthorizer {
    /// `$SYS` and `$share` rules first (with or without an ACL file, as Mosquitto), then
    /// the ACL file if there is one.
    #[inline]
    pub(crate) fn check(&self, access: Access, topic: &str) -> bool {
        if !acl::check_dollar(access, topic) {
            return false;
        }
        let Some(client) = &self.acl else {
            return true;
        };
        let loaded = client.current.load();
        let Some(acl) = &loaded.acl else {
            return true;
        };
        let identity = ClientIdentity {
            client_id: &client.client_id,
            username: client.username.as_deref(),
            address: client.address,
        };
        acl.check(&identity, access, topic)
    }
}

impl Authorizer for ClientAuthorizer {
    fn may_publish(&self, topic: &str) -> bool {
        self.check(Access::Write, topic)
    }

    fn may_subscribe(&self, filter: &str) -> bool {
        self.check(Access::Subscribe, filter)
    }

    fn may_receive(&self, topic: &str) -> bool {
        // Asked for every delivery. Without an ACL file only `$`-topics are checked
        // (`check_dollar`).
        (self.acl.is_none() && !topic.starts_with('$')) || self.check(Access::Read, topic)
    }
}
