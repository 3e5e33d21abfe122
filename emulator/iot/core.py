"""IoT Core's identity and authorization for the MQTT broker: who a TLS client certificate is
(`authenticate`), what IoT policies let it do (`authorize`), and the TLS server context that
accepts the certificates the registry knows (`server_ssl_context`).

moto's IoT backend stays the registry (certificates, policies and their default versions,
principal-policy and thing-principal attachments); this component only reads it, caches what it
derives and drops the caches when a gateway hook sees a change (see `api.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from moto.iot.models import iot_backends
from moto.utilities.utils import get_partition

from emulator.iot import api
from emulator.iot.ca import CertificateAuthority
from emulator.iot.policy import CompiledPolicy, PolicyDocumentError, evaluate, time_context

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
# Resource type each action is authorised on ("iot-action-resources").
RESOURCE_TYPES = {
    "iot:Connect": "client",
    "iot:Publish": "topic",
    "iot:Receive": "topic",
    "iot:RetainPublish": "topic",
    "iot:GetRetainedMessage": "topic",
    "iot:DeleteRetainedMessage": "topic",
    "iot:Subscribe": "topicfilter",
}
# Certificate name attributes and their policy-variable names ("cert-policy-variables").
_NAME_ATTRIBUTES = {
    NameOID.DN_QUALIFIER: "DistinguishedNameQualifier",
    NameOID.COUNTRY_NAME: "Country",
    NameOID.ORGANIZATION_NAME: "Organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OrganizationalUnit",
    NameOID.STATE_OR_PROVINCE_NAME: "State",
    NameOID.COMMON_NAME: "CommonName",
    NameOID.SERIAL_NUMBER: "SerialNumber",
    NameOID.TITLE: "Title",
    NameOID.SURNAME: "Surname",
    NameOID.GIVEN_NAME: "GivenName",
    NameOID.INITIALS: "Initials",
    NameOID.PSEUDONYM: "Pseudonym",
    NameOID.GENERATION_QUALIFIER: "GenerationQualifier",
}
_ALT_NAME_TYPES = {
    x509.RFC822Name: "RFC822Name",
    x509.DNSName: "DNSName",
    x509.DirectoryName: "DirectoryName",
    x509.UniformResourceIdentifier: "UniformResourceIdentifier",
    x509.IPAddress: "IPAddress",
}
# "X.509 Certificate policy variable limitations": a value with one of these characters, or
# longer than 1024 characters, is not substituted (the statement then does not apply).
_WILDCARD_CHARACTERS = set("*$+?#")
_MAX_VARIABLE_LENGTH = 1024
_DECISION_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Principal:
    """An authenticated X.509 client, as IoT Core's policies see it."""

    certificate_id: str  # SHA-256 of the DER, lowercase hex (as AWS)
    certificate_arn: str
    account_id: str
    region: str
    certificate_pem: str = field(compare=False, repr=False)
    # First value of each attribute, by AWS's variable name: {"CommonName": ..., ...}
    subject: dict[str, str] = field(compare=False)
    issuer: dict[str, str] = field(compare=False)
    # Every `iot:Certificate.*` policy variable with a value (substitutable ones only).
    certificate_variables: Mapping[str, str | tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The client's IP address as the broker sees it (aws:SourceIp, "basic-policy-variables");
    # None outside a connection (TestAuthorization).
    source_ip: str | None = field(default=None, compare=False)
    # The endpoint name the client asked for in its TLS Server Name Indication (iot:DomainName,
    # "basic-policy-variables"); None without SNI or outside a connection.
    domain_name: str | None = field(default=None, compare=False)


class AuthenticationError(Exception):
    """The certificate may not connect; `reason` says why in a few words."""

    def __init__(self, reason: str, certificate_id: str | None = None) -> None:
        self.reason = reason
        self.certificate_id = certificate_id
        super().__init__(f"{reason} (certificate {certificate_id})" if certificate_id else reason)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: str
    resource: str  # the full ARN evaluated
    reason: str
    policy_name: str | None


def _name_values(name: x509.Name) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in name:
        label = _NAME_ATTRIBUTES.get(attribute.oid)
        if label and isinstance(attribute.value, str):
            values.setdefault(label, []).append(attribute.value)
    return values


def _alt_names(cert: x509.Certificate, extension: type) -> dict[str, list[str]]:
    try:
        names = cert.extensions.get_extension_for_class(extension).value
    except x509.ExtensionNotFound:
        return {}
    values: dict[str, list[str]] = {}
    for general_name in names:
        label = _ALT_NAME_TYPES.get(type(general_name))
        if label:
            value = general_name.value
            text = value.rfc4514_string() if isinstance(value, x509.Name) else str(value)
            values.setdefault(label, []).append(text)
    return values


def _substitutable(value: str) -> bool:
    return len(value) <= _MAX_VARIABLE_LENGTH and not (_WILDCARD_CHARACTERS & set(value))


def certificate_variables(cert: x509.Certificate) -> dict[str, str | tuple[str, ...]]:
    """The `iot:Certificate.*` policy variables of a certificate (first value of each)."""
    variables: dict[str, str | tuple[str, ...]] = {}
    groups = {
        "Subject": _name_values(cert.subject),
        "Issuer": _name_values(cert.issuer),
        "SubjectAlternativeName": _alt_names(cert, x509.SubjectAlternativeName),
        "IssuerAlternativeName": _alt_names(cert, x509.IssuerAlternativeName),
    }
    for group, attributes in groups.items():
        for label, values in attributes.items():
            if _substitutable(values[0]):
                variables[f"iot:Certificate.{group}.{label}"] = values[0]
            # Every value of a multi-valued attribute, for the ForAnyValue:/ForAllValues:
            # operators ("use-policy-variables": iot:Certificate.Subject.Country.List).
            listed = tuple(v for v in values if _substitutable(v))
            if listed:
                variables[f"iot:Certificate.{group}.{label}.List"] = listed
    # The serial number's textual form is not documented; decimal is an approximation.
    variables["iot:Certificate.SerialNumber"] = str(cert.serial_number)
    return variables


def connect_attributes(
    mqtt5: bool, clean_start: bool, session_expiry_s: int, last_will: bool
) -> tuple[str, ...]:
    """The iot:ConnectAttributes of a CONNECT ("mqtt.html#connect-attribute"): PersistentConnect
    for a session kept after the connection (MQTT 3.1.1 cleanSession 0; MQTT 5 a session expiry
    interval above 0, whatever Clean Start says), LastWill for a will message. A clean connect
    without a will has none (an empty set: ForAllValues: holds, ForAnyValue: does not).
    https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#connect-attribute
    https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html"""
    persistent = session_expiry_s > 0 if mqtt5 else not clean_start
    attributes = ("PersistentConnect",) if persistent else ()
    return attributes + (("LastWill",) if last_will else ())


def _remember_server_name(ssl_object: Any, server_name: str | None, _context: Any) -> None:
    # The TLS SNI callback: the broker reads the name back as iot:DomainName. A client that
    # sends no SNI (an IP address as host) has no domain name: the key then stays unknown.
    ssl_object.iot_domain_name = server_name


def server_name(ssl_object: Any) -> str | None:
    """The SNI host name the client sent in the handshake of `ssl_object`, if any."""
    return getattr(ssl_object, "iot_domain_name", None)


class IotCore:
    """The `emulator.iot` component."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator
        self.account_id: str = emulator.account_id
        self.region: str = emulator.region
        self.ca = CertificateAuthority(Path(emulator.data_dir) / "iot")
        self.root_ca_path: Path = self.ca.root_ca_path
        # What DescribeEndpoint returns for iot:Data-ATS / iot:Data: stable, and a name the
        # broker's server certificate carries.
        self.endpoint_address = "localhost"
        self._lock = threading.RLock()
        self._generation = 0
        self._listeners: list[Callable[[str, str], None]] = []
        self._decisions: dict[tuple, Decision] = {}
        self._decisions_stamp: tuple | None = None
        self._subjects: dict[tuple, Any] = {}
        self._compiled: dict[tuple[str, str], CompiledPolicy | None] = {}
        self._principals: dict[str, Principal] = {}
        # certificate ARN -> thing name, from AttachThingPrincipal with EXCLUSIVE_THING; moto
        # does not keep the association type, so it is saved here (moto's own state is saved
        # by emulator/persistence).
        self._exclusive_path = self.ca.directory / "exclusive-things.json"
        self._exclusive_things: dict[str, str] = self._load_exclusive_things()
        self._issued_by_root: dict[str, bool] = {}
        self._ssl: tuple[tuple, tuple, ssl.SSLContext] | None = None
        emulator.iot = self
        api.register(self, emulator.gateway)

    # Registry -------------------------------------------------------------------------------
    def backend(self, region: str | None = None) -> Any:
        """moto's IoT backend for this account and (by default) the emulator's region."""
        return iot_backends[self.account_id][region or self.region]

    def invalidate(self) -> None:
        """Forget every derived decision (called after any registry change)."""
        with self._lock:
            self._generation += 1

    def add_listener(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(certificate_id, status)` when a certificate's status changes or it is
        deleted ("DELETED"). Called from an HTTP request thread."""
        with self._lock:
            self._listeners.append(callback)

    def notify(self, certificate_id: str, status: str) -> None:
        self.invalidate()
        for callback in list(self._listeners):
            try:
                callback(certificate_id, status)
            except Exception:
                log.exception("certificate listener failed for %s -> %s", certificate_id, status)

    # Authentication -------------------------------------------------------------------------
    def authenticate(
        self, cert_der: bytes, source_ip: str | None = None, domain_name: str | None = None
    ) -> Principal:
        """The principal of a registered, ACTIVE certificate, connected from `source_ip` (the
        value of aws:SourceIp in its decisions) to the endpoint named `domain_name` (the TLS
        SNI, iot:DomainName); AuthenticationError otherwise."""
        certificate_id = hashlib.sha256(cert_der).hexdigest()
        backend = self.backend()
        cert = backend.certificates.get(certificate_id)
        if cert is None:
            elsewhere = self._regions_holding(certificate_id)
            reason = "certificate is not registered"
            if elsewhere:
                reason += (
                    f" in {self.region} (this endpoint's region); it is registered in "
                    + ", ".join(elsewhere)
                )
            raise AuthenticationError(reason, certificate_id)
        if cert.status != ACTIVE:
            raise AuthenticationError(f"certificate status is {cert.status}", certificate_id)
        if cert.ca_certificate_id:
            ca = backend.ca_certificates.get(cert.ca_certificate_id)
            if ca is None or ca.status != ACTIVE:
                status = "deleted" if ca is None else ca.status
                raise AuthenticationError(
                    f"CA certificate {cert.ca_certificate_id} status is {status}", certificate_id
                )
        principal = self._principal(cert)
        if source_ip or domain_name:
            principal = dataclasses.replace(principal, source_ip=source_ip, domain_name=domain_name)
        return principal

    def _regions_holding(self, certificate_id: str) -> list[str]:
        try:
            loaded = list(dict.items(iot_backends[self.account_id]))
        except Exception:  # moto internals differ: the message just gets shorter
            return []
        return [region for region, b in loaded if certificate_id in b.certificates]

    def _principal(self, cert: Any) -> Principal:
        principal = self._principals.get(cert.certificate_id)
        if principal is None:
            parsed = x509.load_pem_x509_certificate(cert.certificate_pem.encode())
            principal = Principal(
                certificate_id=cert.certificate_id,
                certificate_arn=cert.arn,
                account_id=self.account_id,
                region=self.region,
                certificate_pem=cert.certificate_pem,
                subject={k: v[0] for k, v in _name_values(parsed.subject).items()},
                issuer={k: v[0] for k, v in _name_values(parsed.issuer).items()},
                certificate_variables={
                    **certificate_variables(parsed),
                    # "certificate-policy-examples": topic/${iot:CertificateId}.
                    "iot:CertificateId": cert.certificate_id,
                },
            )
            self._principals[cert.certificate_id] = principal
        return principal

    # Authorization --------------------------------------------------------------------------
    def resource_arn(self, action: str, target: str) -> str:
        kind = RESOURCE_TYPES.get(action)
        if kind is None:
            raise ValueError(f"unknown IoT data-plane action {action!r}")
        partition = get_partition(self.region)
        return f"arn:{partition}:iot:{self.region}:{self.account_id}:{kind}/{target}"

    def _stamp(self, backend: Any) -> tuple:
        # The generation covers API calls; the sizes catch writes that bypass the gateway
        # (e.g. moto's CloudFormation creating a policy attachment).
        return (
            self._generation,
            id(backend),
            len(backend.principal_policies),
            len(backend.principal_things),
            len(backend.policies),
            len(backend.certificates),
        )

    def authorize(
        self,
        principal: Principal,
        client_id: str,
        action: str,
        target: str,
        source_ip: str | None = None,
        connect_attributes: tuple[str, ...] | None = None,
    ) -> Decision:
        """Evaluate every policy attached to the certificate for `action` on `target` (the
        client id for iot:Connect, the topic, or the topic filter for iot:Subscribe), from
        `source_ip` (by default the address the principal connected from). For iot:Connect,
        `connect_attributes` are the CONNECT's iot:ConnectAttributes (`connect_attributes()`);
        without them that key cannot be evaluated (fails closed)."""
        source_ip = source_ip or principal.source_ip
        backend = self.backend()
        stamp = self._stamp(backend)
        if stamp != self._decisions_stamp:
            with self._lock:
                self._decisions = {}
                self._subjects = {}
                self._decisions_stamp = stamp
        key = (
            principal.certificate_id,
            client_id,
            action,
            target,
            source_ip,
            principal.domain_name,
            connect_attributes,
        )
        decisions = self._decisions
        decision = decisions.get(key)
        if decision is None:
            decision, cacheable = self._decide(
                backend, principal, client_id, action, target, source_ip, connect_attributes
            )
            if cacheable:
                if len(decisions) >= _DECISION_CACHE_LIMIT:
                    decisions.clear()
                decisions[key] = decision
        return decision

    def _decide(
        self,
        backend: Any,
        principal: Principal,
        client_id: str,
        action: str,
        target: str,
        source_ip: str | None,
        connect_attributes: tuple[str, ...] | None = None,
    ) -> tuple[Decision, bool]:
        """The decision, and whether it may be cached (until the registry changes)."""
        resource = self.resource_arn(action, target)
        key = (principal.certificate_id, client_id, source_ip, principal.domain_name)
        subject = self._subjects.get(key)
        if subject is None:
            if len(self._subjects) >= _DECISION_CACHE_LIMIT:
                self._subjects.clear()
            subject = self._subjects[key] = self._subject(backend, principal, client_id, source_ip)
        if isinstance(subject, str):  # nothing can be allowed; the string says why
            return Decision(False, action, resource, subject, None), True
        policies, context, broken = subject
        if broken:
            # A stored document the evaluator cannot read (CreatePolicy refuses these; one can
            # only come from older state) might hold a Deny: fail closed.
            reason = (
                f"attached policies with documents the emulator cannot evaluate: "
                f"{', '.join(broken)} (denied; replace them with CreatePolicyVersion)"
            )
            return Decision(False, action, resource, reason, broken[0]), True
        cacheable = True
        if action == "iot:Connect" and connect_attributes is not None:
            # The CONNECT's features; AWS documents the key for iot:Connect only, so on other
            # actions it stays unknown and a statement reading it fails closed.
            context = {**context, "iot:ConnectAttributes": connect_attributes}
        if any(policy.time_dependent for _name, policy in policies):
            # aws:CurrentTime / aws:EpochTime are the time of this request: never cached.
            context = {**context, **time_context(time.time())}
            cacheable = False
        result = evaluate(policies, action, resource, context)
        decision = Decision(result.allowed, action, resource, result.reason, result.policy_name)
        return decision, cacheable

    def _subject(
        self, backend: Any, principal: Principal, client_id: str, source_ip: str | None
    ) -> str | tuple[list[tuple[str, CompiledPolicy]], dict[str, Any], list[str]]:
        """What every decision of one connection shares: its policies and policy variables."""
        cert = backend.certificates.get(principal.certificate_id)
        if cert is None or cert.status != ACTIVE:
            status = "deleted" if cert is None else f"status is {cert.status}"
            return f"certificate {principal.certificate_id} {status}"
        thing = self._attached_thing(backend, principal, client_id)
        # Policies of the thing's groups (and their ancestors) apply too ("thing-groups").
        attached = self.attached_policies(backend, principal, client_id)
        if not attached:
            reason = f"no policy attached to certificate {principal.certificate_id}"
            if thing is not None:
                reason += f" or to the thing groups of thing {thing.thing_name}"
            return reason
        compiled = []
        broken = []
        for policy in attached:
            program = self._compile(policy)
            if program is None:
                broken.append(policy.name)
            else:
                compiled.append((policy.name, program))
        return compiled, self.policy_context(principal, client_id, source_ip), broken

    def attached_policies(self, backend: Any, principal: Principal, client_id: str | None) -> list:
        """moto's policy objects attached to the certificate, then to the thing groups of the
        thing named `client_id` if that thing is attached to the certificate."""
        thing = self._attached_thing(backend, principal, client_id) if client_id else None
        targets = {principal.certificate_arn}
        if thing is not None:
            targets |= self._group_arns(backend, thing.arn)
        return [
            policy
            for (target_arn, _name), (_p, policy) in list(backend.principal_policies.items())
            if target_arn in targets
        ]

    def principal_for_arn(self, backend: Any, certificate_arn: str) -> Principal | None:
        """The principal of a registered certificate, whatever its status."""
        certificate_id = certificate_arn.rpartition(":cert/")[2]
        cert = backend.certificates.get(certificate_id)
        if cert is None or cert.arn != certificate_arn:
            return None
        return self._principal(cert)

    def compile_policy(self, policy: Any) -> CompiledPolicy | None:
        """The compiled default version of a moto policy (None if it is malformed)."""
        return self._compile(policy)

    def _compile(self, policy: Any) -> CompiledPolicy | None:
        document = policy.document
        text = document if isinstance(document, str) else repr(document)
        key = (policy.name, text)
        if key not in self._compiled:
            try:
                self._compiled[key] = CompiledPolicy.parse(document)
            except PolicyDocumentError as exc:
                log.warning("IoT policy %s cannot be evaluated: %s", policy.name, exc)
                self._compiled[key] = None
        return self._compiled[key]

    def thing_for(self, principal: Principal, client_id: str) -> str | None:
        """The thing the connection acts as: the one exclusively attached to the certificate, or
        else the thing named `client_id` if it is attached to it ("thing-policy-variables": with
        a non-exclusive association the client id must be the thing's name)."""
        thing = self._attached_thing(self.backend(), principal, client_id)
        return thing.thing_name if thing is not None else None

    def _attached_thing(self, backend: Any, principal: Principal, client_id: str) -> Any | None:
        # An exclusive association names the thing whatever the client id ("exclusive-thing");
        # otherwise the client id must be the name of a thing attached to the certificate.
        exclusive = self._exclusive_things.get(principal.certificate_arn)
        name = exclusive if exclusive is not None else client_id
        entry = backend.principal_things.get((principal.certificate_arn, name))
        return entry[1] if entry is not None else None

    def _load_exclusive_things(self) -> dict[str, str]:
        try:
            loaded = json.loads(self._exclusive_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self._exclusive_path, exc)
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def exclusive_thing(self, certificate_arn: str) -> str | None:
        return self._exclusive_things.get(certificate_arn)

    def set_exclusive_thing(self, certificate_arn: str, thing_name: str | None) -> None:
        """Record (or, with None, forget) an EXCLUSIVE_THING association (AttachThingPrincipal)."""
        with self._lock:
            if thing_name is None:
                self._exclusive_things.pop(certificate_arn, None)
            else:
                self._exclusive_things[certificate_arn] = thing_name
            self._generation += 1
            tmp = self._exclusive_path.with_name(self._exclusive_path.name + ".tmp")
            tmp.write_text(json.dumps(self._exclusive_things, indent=1, sort_keys=True))
            tmp.replace(self._exclusive_path)

    @staticmethod
    def _group_arns(backend: Any, thing_arn: str) -> set[str]:
        arns: set[str] = set()
        for group in list(backend.thing_groups.values()):
            if thing_arn in group.things:
                arns.add(group.arn)
                for ancestor in group.metadata.get("rootToParentThingGroups", []):
                    arns.add(ancestor["groupArn"])
        return arns

    def policy_context(
        self, principal: Principal, client_id: str, source_ip: str | None = None
    ) -> dict[str, Any]:
        """The policy variables (and condition keys) for one connection."""
        context: dict[str, Any] = dict(principal.certificate_variables)
        context["iot:ClientId"] = client_id
        if source_ip:
            context["aws:SourceIp"] = source_ip
        if principal.domain_name:
            context["iot:DomainName"] = principal.domain_name
        thing = self._attached_thing(self.backend(), principal, client_id)
        context["iot:Connection.Thing.IsAttached"] = "true" if thing is not None else "false"
        if thing is not None:
            context["iot:Connection.Thing.ThingName"] = thing.thing_name
            if thing.thing_type is not None:
                context["iot:Connection.Thing.ThingTypeName"] = thing.thing_type.thing_type_name
            for name, value in (thing.attributes or {}).items():
                context[f"iot:Connection.Thing.Attributes[{name}]"] = str(value)
        return context

    # TLS --------------------------------------------------------------------------------------
    def server_ssl_context(self) -> ssl.SSLContext:
        """The broker's TLS server context: our server certificate, client certificates
        required, trusting the root CA and every registered certificate (rebuilt when the
        registry's certificates change; cached otherwise)."""
        backend = self.backend()
        # Called per connection: first a constant-time check that nothing was registered or
        # deleted since the last call (API changes bump the generation; others change the size).
        quick = (id(backend), self._generation, len(backend.certificates))
        cached = self._ssl
        if cached is not None and cached[0] == quick:
            return cached[2]
        # Certificates our root signed chain to it already; the others are trust anchors
        # themselves, and only a change among those needs a new context.
        anchors = [c for c in list(backend.certificates.values()) if not self._is_issued_by_root(c)]
        key = (id(backend), tuple(c.certificate_id for c in anchors))
        if cached is not None and cached[1] == key:
            self._ssl = (quick, key, cached[2])
            return cached[2]
        with self._lock:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.ca.server_cert_path, self.ca.server_key_path)
            context.sni_callback = _remember_server_name
            context.verify_mode = ssl.CERT_REQUIRED
            # A registered certificate that our root did not sign (RegisterCertificate(WithoutCA))
            # is itself the trust anchor: accept it without its issuer's chain.
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            context.load_verify_locations(cadata=self.ca.root_pem)
            for cert in anchors:
                try:
                    context.load_verify_locations(cadata=cert.certificate_pem)
                except (ssl.SSLError, ValueError):
                    log.warning("certificate %s cannot be a TLS trust anchor", cert.certificate_id)
            # Session tickets cost handshake time and devices reconnect with full handshakes.
            context.num_tickets = 0
            self._ssl = (quick, key, context)
            return context

    def _is_issued_by_root(self, cert: Any) -> bool:
        known = self._issued_by_root.get(cert.certificate_id)
        if known is None:
            try:
                parsed = x509.load_pem_x509_certificate(cert.certificate_pem.encode())
                known = self.ca.issued_by_root(parsed)
            except ValueError:
                known = False
            self._issued_by_root[cert.certificate_id] = known
        return known
