"""The audit trail: a hash-chained log of every push, rollback and destroy
(``chain``), who and why (``identity``), the records each action appends (``trail``),
what the log says of a target's versions (``lookup``) and ``deployer history``
(``history``)."""

from deployer.audit.chain import AUDIT_FILE, AuditLog, Verification
from deployer.audit.trail import AuditTrail

__all__ = ["AUDIT_FILE", "AuditLog", "AuditTrail", "Verification"]
