//! What each LDK node needs besides its signer, as small in-memory pieces:
//! a logger, a fixed fee estimator, a broadcaster that records, a monitor
//! persister that keeps serialized monitors in a map, and a router that
//! pays only direct peers over the first usable channel.

use std::collections::HashMap;
use std::sync::Mutex;

use bitcoin::Transaction;
use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::chain::ChannelMonitorUpdateStatus;
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::Persist;
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::ln::channel_state::ChannelDetails;
use lightning::routing::router::{
    InFlightHtlcs, Path, Payee, Route, RouteHop, RouteParameters, Router,
};
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::types::features::{ChannelFeatures, NodeFeatures};
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::Writeable as _;

/// LDK's log lines, prefixed with the node's name, at info and above
/// (the test harness captures them and shows them on failure).
pub struct Log(pub &'static str);

impl Logger for Log {
    fn log(&self, record: Record) {
        if record.level >= Level::Info {
            eprintln!("[{} {}] {}", self.0, record.level, record.args);
        }
    }
}

/// One fee rate for every target.
pub struct Fees(pub u32);

impl FeeEstimator for Fees {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        self.0
    }
}

/// Records every broadcast transaction.
#[derive(Default)]
pub struct Broadcaster(Mutex<Vec<Transaction>>);

impl Broadcaster {
    /// Everything broadcast so far.
    pub fn all(&self) -> Vec<Transaction> {
        self.0.lock().unwrap().clone()
    }
}

impl BroadcasterInterface for Broadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        self.0
            .lock()
            .unwrap()
            .extend(txs.iter().map(|t| (*t).clone()));
    }
}

/// Keeps every monitor, serialized, by name; persistence is synchronous.
#[derive(Default)]
pub struct Monitors(Mutex<HashMap<String, Vec<u8>>>);

impl Monitors {
    /// Every stored monitor, serialized.
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().values().cloned().collect()
    }

    /// Whether no monitor is stored.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }

    /// How many monitors are stored.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn store<S: EcdsaChannelSigner>(&self, name: MonitorName, monitor: &ChannelMonitor<S>) {
        self.0
            .lock()
            .unwrap()
            .insert(name.to_string(), monitor.encode());
    }
}

impl<S: EcdsaChannelSigner> Persist<S> for Monitors {
    fn persist_new_channel(
        &self,
        name: MonitorName,
        monitor: &ChannelMonitor<S>,
    ) -> ChannelMonitorUpdateStatus {
        self.store(name, monitor);
        ChannelMonitorUpdateStatus::Completed
    }

    fn update_persisted_channel(
        &self,
        name: MonitorName,
        _: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<S>,
    ) -> ChannelMonitorUpdateStatus {
        self.store(name, monitor);
        ChannelMonitorUpdateStatus::Completed
    }

    fn archive_persisted_channel(&self, name: MonitorName) {
        self.0.lock().unwrap().remove(&name.to_string());
    }
}

/// Routes a payment to a direct peer over the first usable channel with
/// it: the harness has two nodes and no gossip.
pub struct DirectRouter;

impl Router for DirectRouter {
    fn find_route(
        &self,
        _payer: &PublicKey,
        params: &RouteParameters,
        first_hops: Option<&[&ChannelDetails]>,
        _: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        let Payee::Clear {
            node_id,
            final_cltv_expiry_delta,
            ..
        } = &params.payment_params.payee
        else {
            return Err("the harness pays clear payees only");
        };
        let channel = first_hops
            .unwrap_or_default()
            .iter()
            .find(|c| c.counterparty.node_id == *node_id && c.is_usable)
            .ok_or("no usable channel with the payee")?;
        let hop = RouteHop {
            pubkey: *node_id,
            node_features: NodeFeatures::from_le_bytes(
                channel.counterparty.features.le_flags().to_vec(),
            ),
            short_channel_id: channel
                .get_outbound_payment_scid()
                .ok_or("the channel has no scid yet")?,
            channel_features: ChannelFeatures::empty(),
            fee_msat: params.final_value_msat,
            cltv_expiry_delta: *final_cltv_expiry_delta,
            maybe_announced_channel: false,
        };
        Ok(Route {
            paths: vec![Path {
                hops: vec![hop],
                blinded_tail: None,
            }],
            route_params: Some(params.clone()),
        })
    }

    fn create_blinded_payment_paths<T: Signing + Verification>(
        &self,
        _: PublicKey,
        _: Vec<ChannelDetails>,
        _: ReceiveTlvs,
        _: Option<u64>,
        _: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        Err(())
    }
}
