//! Access control: which client identity may use which keys and domains.
//!
//! The identity comes from the client's verified TLS certificate; a client
//! absent from the list may do nothing. Every denial is audited by the
//! caller.

use std::collections::HashMap;

use tidemark_core::{ClientId, Domain, KeyId};

use crate::config::Grant;

/// Why a client may not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// The identity has no ACL entry.
    #[error("client {0} has no grant")]
    UnknownClient(ClientId),
    /// The identity may not use this domain.
    #[error("client {client} may not use domain {domain}")]
    Domain {
        /// The client.
        client: ClientId,
        /// The domain.
        domain: Domain,
    },
    /// The identity may not use this key.
    #[error("client {client} may not use key {key}")]
    Key {
        /// The client.
        client: ClientId,
        /// The key.
        key: KeyId,
    },
    /// The identity may not call the admin service.
    #[error("client {0} is not an admin")]
    NotAdmin(ClientId),
}

impl Denial {
    /// A short tag for audit records and metrics.
    pub fn tag(&self) -> &'static str {
        match self {
            Denial::UnknownClient(_) => "denied-no-grant",
            Denial::Domain { .. } => "denied-domain",
            Denial::Key { .. } => "denied-key",
            Denial::NotAdmin(_) => "denied-not-admin",
        }
    }
}

/// The access-control list.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    grants: HashMap<ClientId, Grant>,
}

impl Acl {
    /// An ACL from validated grants.
    pub fn new(grants: impl IntoIterator<Item = (ClientId, Grant)>) -> Self {
        Acl {
            grants: grants.into_iter().collect(),
        }
    }

    /// Ok if `client` may sign with `key` in `domain`.
    pub fn authorize(&self, client: &ClientId, domain: Domain, key: &KeyId) -> Result<(), Denial> {
        let grant = self
            .grants
            .get(client)
            .ok_or_else(|| Denial::UnknownClient(client.clone()))?;
        if !grant.domains.contains(&domain) {
            return Err(Denial::Domain {
                client: client.clone(),
                domain,
            });
        }
        match &grant.keys {
            Some(keys) if !keys.contains(key) => Err(Denial::Key {
                client: client.clone(),
                key: key.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Ok if `client` may call the admin service.
    pub fn authorize_admin(&self, client: &ClientId) -> Result<(), Denial> {
        match self.grants.get(client) {
            Some(g) if g.admin => Ok(()),
            Some(_) => Err(Denial::NotAdmin(client.clone())),
            None => Err(Denial::UnknownClient(client.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn acl() -> Acl {
        Acl::new([(
            ClientId::new("replica-1").unwrap(),
            Grant {
                keys: Some(BTreeSet::from([KeyId::new("val").unwrap()])),
                domains: BTreeSet::from([Domain::Consensus]),
                admin: false,
            },
        )])
    }

    #[test]
    fn grants_are_checked_per_client_domain_and_key() {
        let acl = acl();
        let (me, other) = (
            ClientId::new("replica-1").unwrap(),
            ClientId::new("x").unwrap(),
        );
        let (val, wallet) = (KeyId::new("val").unwrap(), KeyId::new("wallet").unwrap());
        assert_eq!(acl.authorize(&me, Domain::Consensus, &val), Ok(()));
        assert_eq!(
            acl.authorize(&me, Domain::Consensus, &wallet)
                .unwrap_err()
                .tag(),
            "denied-key"
        );
        assert_eq!(
            acl.authorize(&me, Domain::Bitcoin, &val).unwrap_err().tag(),
            "denied-domain"
        );
        assert_eq!(
            acl.authorize(&other, Domain::Consensus, &val)
                .unwrap_err()
                .tag(),
            "denied-no-grant"
        );
        assert_eq!(
            acl.authorize_admin(&me).unwrap_err().tag(),
            "denied-not-admin"
        );
    }
}
