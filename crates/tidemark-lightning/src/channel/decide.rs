//! The pure decision: `(policy, context, state, request) -> Verdict`.
//!
//! No I/O and no secret: everything `decide` needs is the stored state,
//! the request, the policy and the caller's context. Transactions are
//! rebuilt here (to compare content and verify the counterparty's
//! signatures) and again, identically, by `execute`, which alone touches
//! the keys.

use bitcoin::ScriptBuf;
use lightning::ln::chan_utils::ChannelTransactionParameters;
use tidemark_core::Tag;

use crate::channel::error::ChannelError;
use crate::channel::request::{ChannelRequest, CommitmentData};
use crate::channel::state::{ChannelKind, ChannelSetup, ChannelState};
use crate::channel::verdict::{Action, Context, Operation, Output, Verdict, Warning};
use crate::channel::{close, counterparty, holder, import, spend};
use crate::policy::LightningPolicy;
use crate::tags;

/// Why a rule stopped a request: a refusal, or a malformed request.
#[derive(Debug)]
pub(crate) enum Stop {
    Refuse(Tag, String),
    Error(ChannelError),
}

impl From<ChannelError> for Stop {
    fn from(e: ChannelError) -> Self {
        Stop::Error(e)
    }
}

/// A refusal with `tag`.
pub(crate) fn refuse<T>(tag: &Tag, detail: String) -> Result<T, Stop> {
    Err(Stop::Refuse(tag.clone(), detail))
}

/// The rules one request is checked against, collecting the warnings of
/// downgraded business rules.
pub(crate) struct Rules<'a> {
    pub(crate) policy: &'a LightningPolicy,
    pub(crate) ctx: &'a Context<'a>,
    pub(crate) warnings: Vec<Warning>,
    /// The channel's parameters, once it is known.
    pub(crate) params: Option<ChannelTransactionParameters>,
}

impl Rules<'_> {
    /// A business rule: refuses unless downgraded, then warns.
    pub(crate) fn business(
        &mut self,
        tag: &Tag,
        ok: bool,
        detail: impl FnOnce() -> String,
    ) -> Result<(), Stop> {
        if ok {
            return Ok(());
        }
        if self.policy.is_downgraded(tag) {
            self.warnings.push(Warning {
                tag: tag.clone(),
                detail: detail(),
            });
            return Ok(());
        }
        refuse(tag, detail())
    }

    /// The fee rate, HTLC count, value in flight and expiry ranges of a
    /// commitment.
    pub(crate) fn commitment_ranges(&mut self, data: &CommitmentData) -> Result<(), Stop> {
        let p = self.policy;
        let rate = data.feerate_per_kw;
        self.business(
            &tags::FEERATE_RANGE,
            (p.min_feerate_per_kw..=p.max_feerate_per_kw).contains(&rate),
            || {
                format!(
                    "fee rate {rate} sat/kw is outside {}..={}",
                    p.min_feerate_per_kw, p.max_feerate_per_kw
                )
            },
        )?;
        let count = data.htlcs.len();
        self.business(&tags::HTLC_COUNT, count <= usize::from(p.max_htlcs), || {
            format!("{count} HTLCs; at most {}", p.max_htlcs)
        })?;
        let in_flight = data
            .htlcs
            .iter()
            .try_fold(0u64, |sum, h| sum.checked_add(h.amount_msat));
        self.business(
            &tags::HTLC_VALUE_IN_FLIGHT,
            in_flight.is_some_and(|v| v <= p.max_htlc_value_in_flight_msat),
            || {
                format!(
                    "{} msat in HTLCs; at most {}",
                    in_flight.map_or_else(|| "overflowing".into(), |v| v.to_string()),
                    p.max_htlc_value_in_flight_msat
                )
            },
        )?;
        let height = self.ctx.best_block_height;
        for (i, htlc) in data.htlcs.iter().enumerate() {
            let expiry = htlc.cltv_expiry;
            let limit = height.map(|h| h.saturating_add(p.max_cltv_expiry_delta));
            let ok = expiry < 500_000_000 && limit.is_none_or(|l| expiry <= l);
            self.business(&tags::HTLC_CLTV_RANGE, ok, || match limit {
                Some(l) => format!("HTLC {i} expires at {expiry}, after {l}"),
                None => format!("HTLC {i} expires at {expiry}, which is not a block height"),
            })?;
        }
        Ok(())
    }

    /// Whether `script` is the wallet's or allowlisted.
    pub(crate) fn is_ours(&self, script: &ScriptBuf) -> bool {
        self.ctx.wallet_scripts.contains(script) || self.policy.allowlist.contains(script)
    }

    /// Every output pays the wallet or the allowlist.
    pub(crate) fn destinations(&self, outputs: &[bitcoin::TxOut]) -> Result<(), Stop> {
        match outputs.iter().position(|o| !self.is_ours(&o.script_pubkey)) {
            None => Ok(()),
            Some(i) => refuse(
                &tags::DESTINATION_NOT_ALLOWED,
                format!(
                    "output {i} pays {}, which is neither the wallet's nor allowlisted",
                    outputs[i].script_pubkey.to_hex_string()
                ),
            ),
        }
    }

    /// The channel's parameters (set for every request about a stored
    /// channel).
    pub(crate) fn params(&self) -> Result<&ChannelTransactionParameters, Stop> {
        self.params.as_ref().ok_or_else(|| {
            Stop::Error(ChannelError::InvalidRequest(
                "no channel parameters for this request".into(),
            ))
        })
    }

    /// A decision to sign.
    pub(crate) fn sign(self, new_state: Option<ChannelState>, operation: Operation) -> Verdict {
        Verdict::Sign {
            new_state: new_state.map(Box::new),
            action: Box::new(Action {
                operation,
                params: self.params,
            }),
            warnings: self.warnings,
        }
    }
}

/// The stored channel's commitment format. A stored setup always has one
/// (setup refuses others); a state that lost it is unreadable.
pub(crate) fn kind(state: &ChannelState) -> Result<ChannelKind, Stop> {
    state.setup.kind().ok_or_else(|| {
        Stop::Error(ChannelError::CorruptState(
            "the stored channel type is not one the signer can rebuild".into(),
        ))
    })
}

/// Decides `request` against `state` (`None`: the channel was never set
/// up). Pure: the same inputs always give the same verdict.
///
/// `Err` means the request is malformed (nothing is signed, nothing
/// changes); a policy refusal is `Ok(Verdict::Refuse { .. })`.
pub fn decide(
    policy: &LightningPolicy,
    ctx: &Context<'_>,
    state: Option<&ChannelState>,
    request: &ChannelRequest,
) -> Result<Verdict, ChannelError> {
    let mut rules = Rules {
        policy,
        ctx,
        warnings: Vec::new(),
        params: None,
    };
    use ChannelRequest as R;
    let decided = match (request, state) {
        (R::Setup(setup), _) => decide_setup(rules, state, setup),
        (R::Import(i), _) => import::import(rules, state, i),
        (R::PerCommitmentPoint(n), _) => Ok(rules.sign(None, Operation::PerCommitmentPoint(*n))),
        (_, None) => refuse(
            &tags::CHANNEL_UNKNOWN,
            format!("a {} request for a channel never set up", request.kind()),
        ),
        (request, Some(s)) => {
            rules.params = Some(s.setup.transaction_parameters());
            match request {
                R::ReleaseHolderSecret(n) => holder::release_secret(rules, s, *n),
                R::ValidateHolderCommitment(h) => holder::validate(rules, s, h),
                R::SignHolderCommitment(n) => holder::sign(rules, s, *n),
                R::ValidateCounterpartyRevocation { number, secret } => {
                    counterparty::revocation(rules, s, *number, secret)
                }
                R::SignCounterpartyCommitment(data) => counterparty::sign(rules, s, data),
                R::SignHolderHtlc(r) => spend::holder_htlc(rules, s, r),
                R::SignCounterpartyHtlc(r) => spend::counterparty_htlc(rules, s, r),
                R::SignJustice(r) => spend::justice(rules, s, r),
                R::SignHolderAnchor(r) => spend::anchor(rules, s, r),
                R::SignClosing(r) => close::closing(rules, s, r),
                R::SignChannelAnnouncement(r) => close::announcement(rules, s, r),
                R::Setup(_) | R::Import(_) | R::PerCommitmentPoint(_) => Err(Stop::Error(
                    ChannelError::InvalidRequest("request dispatched twice".into()),
                )),
            }
        }
    };
    match decided {
        Ok(verdict) => Ok(verdict),
        Err(Stop::Refuse(tag, detail)) => Ok(Verdict::Refuse { tag, detail }),
        Err(Stop::Error(e)) => Err(e),
    }
}

fn decide_setup(
    mut rules: Rules<'_>,
    state: Option<&ChannelState>,
    setup: &ChannelSetup,
) -> Result<Verdict, Stop> {
    if let Some(current) = state {
        if current.setup == *setup {
            return Ok(Verdict::Replay {
                output: Output::Done,
            });
        }
        if current.setup.funding_outpoint != setup.funding_outpoint {
            return refuse(
                &tags::FUNDING_OUTPOINT_CHANGED,
                format!(
                    "the channel is funded by {}:{}; a setup with {}:{} is refused",
                    current.setup.funding_outpoint.txid,
                    current.setup.funding_outpoint.vout,
                    setup.funding_outpoint.txid,
                    setup.funding_outpoint.vout
                ),
            );
        }
        return refuse(
            &tags::CHANNEL_ALREADY_SETUP,
            "the channel was set up with other parameters".into(),
        );
    }
    check_new_setup(&mut rules, setup)?;
    let operation = Operation::VerifySetup {
        channel_keys_id: setup.channel_keys_id,
        holder: setup.holder,
    };
    rules.params = Some(setup.transaction_parameters());
    Ok(rules.sign(Some(ChannelState::new(setup.clone())), operation))
}

/// The rules of a new channel's parameters (a setup, or the setup part of
/// an import): its value, its type and both contest delays.
pub(crate) fn check_new_setup(rules: &mut Rules<'_>, setup: &ChannelSetup) -> Result<(), Stop> {
    if setup.channel_value_sat == 0 || setup.channel_value_sat > 21_000_000 * 100_000_000 {
        return Err(ChannelError::InvalidRequest(format!(
            "channel value {} sat",
            setup.channel_value_sat
        ))
        .into());
    }
    match setup.kind() {
        Some(kind) if rules.policy.allowed_types.contains(&kind) => {}
        Some(kind) => {
            return refuse(
                &tags::CHANNEL_TYPE,
                format!("channel type {} is not allowed", kind.name()),
            );
        }
        None => {
            return refuse(
                &tags::CHANNEL_TYPE,
                format!(
                    "channel type {} is not one the signer can rebuild",
                    hex::encode(&setup.channel_type)
                ),
            );
        }
    }
    let (min, max) = (
        rules.policy.min_contest_delay,
        rules.policy.max_contest_delay,
    );
    for (side, delay) in [
        ("holder", setup.holder_selected_contest_delay),
        ("counterparty", setup.counterparty_selected_contest_delay),
    ] {
        rules.business(
            &tags::CONTEST_DELAY_RANGE,
            (min..=max).contains(&delay),
            || format!("the {side}-selected contest delay {delay} is outside {min}..={max}"),
        )?;
    }
    Ok(())
}
