"""IoT control-plane requests the emulator answers or watches, in front of moto (thin adapter).

Answered here (moto's own answers are not usable for a real TLS client):
- CreateKeysAndCertificate, CreateCertificateFromCsr: certificates signed by our root CA (from
  the CSR's own public key), then stored in moto's registry;
- RegisterCertificate, RegisterCertificateWithoutCA: the device's own certificate, validated
  (key type and size, signature hash, a registered CA for RegisterCertificate);
- RegisterCACertificate: a malformed PEM is refused before moto sees it;
- DescribeEndpoint for iot:Data-ATS / iot:Data: a stable address the broker's certificate names;
- CreatePolicy, CreatePolicyVersion: the document is checked as AWS does (MalformedPolicyException)
  before moto stores it;
- DeleteCertificate: AWS's checks, and forceDelete takes the policy attachments with it;
- TestAuthorization, GetEffectivePolicies (moto has neither): the broker's own policy evaluation.
Observed after moto answered: every change that can alter an authentication or authorization
decision (the caches in `IotCore` are dropped; certificate status changes reach the listeners).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from moto.core.exceptions import JsonRESTError
from moto.iot.exceptions import (
    CertificateStateException,
    DeleteConflictException,
    ResourceNotFoundException,
)

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error, json_response
from emulator.iot.ca import (
    AWS_IOT_CERTIFICATE_SUBJECT,
    certificate_pem,
    device_key_problem,
    new_rsa_key,
    private_key_pem,
    public_key_pem,
    signature_problem,
)
from emulator.iot.policy import CompiledPolicy, PolicyDocumentError, explain, time_context

if TYPE_CHECKING:
    from emulator.iot.core import IotCore

# API_UpdateCertificate: the values newStatus accepts.
CERTIFICATE_STATUSES = {
    "ACTIVE",
    "INACTIVE",
    "REVOKED",
    "PENDING_TRANSFER",
    "REGISTER_INACTIVE",
    "PENDING_ACTIVATION",
}
DATA_ENDPOINT_TYPES = {None, "", "iot:Data", "iot:Data-ATS"}
# Changes after which cached decisions and the TLS trust store may be stale.
_INVALIDATING = (
    "AttachPolicy",
    "DetachPolicy",
    "AttachPrincipalPolicy",
    "DetachPrincipalPolicy",
    "CreatePolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeletePolicyVersion",
    "DeletePolicy",
    "AttachThingPrincipal",
    "DetachThingPrincipal",
    "UpdateThing",
    "DeleteThing",
    "RegisterCACertificate",
    "UpdateCACertificate",
    "DeleteCACertificate",
    "RegisterCertificate",
    "RegisterCertificateWithoutCA",
    "AddThingToThingGroup",
    "RemoveThingFromThingGroup",
    "UpdateThingGroupsForThing",
    "DeleteThingGroup",
)
# API_AuthInfo actionType -> the policy action the broker authorizes.
AUTH_ACTIONS = {
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
    "CONNECT": "iot:Connect",
}
# API_UpdateCertificate: "Setting the status to PENDING_TRANSFER or PENDING_ACTIVATION will
# result in an exception being thrown" (statuses used internally by AWS IoT).
_INTERNAL_STATUSES = {"PENDING_TRANSFER", "PENDING_ACTIVATION"}


def register(core: IotCore, gateway: Gateway) -> None:
    handlers = _Handlers(core)
    before_moto = {
        "CreateKeysAndCertificate": handlers.create_keys_and_certificate,
        "CreateCertificateFromCsr": handlers.create_certificate_from_csr,
        "RegisterCertificate": handlers.register_certificate,
        "RegisterCertificateWithoutCA": handlers.register_certificate_without_ca,
        "RegisterCACertificate": handlers.check_ca_certificate,
        "DescribeEndpoint": handlers.describe_endpoint,
        "CreatePolicy": handlers.check_policy_document,
        "CreatePolicyVersion": handlers.check_policy_document,
        "UpdateCertificate": handlers.before_update_certificate,
        "DeleteCertificate": handlers.delete_certificate,
        "TestAuthorization": handlers.test_authorization,
        "GetEffectivePolicies": handlers.get_effective_policies,
    }
    for operation, handler in before_moto.items():
        gateway.on("iot", operation, handler)
    gateway.after("iot", "UpdateCertificate", handlers.after_update_certificate)
    gateway.after("iot", "AttachThingPrincipal", handlers.after_attach_thing_principal)
    gateway.after("iot", "DetachThingPrincipal", handlers.after_detach_thing_principal)
    for operation in _INVALIDATING:
        gateway.after("iot", operation, handlers.invalidate)
    gateway.route("/_emulator/root-ca.pem", handlers.root_ca)


def _moto_error(exc: JsonRESTError) -> AwsResponse:
    # moto's description carries AWS's extra fields (resourceId, resourceArn) as well.
    return AwsResponse(
        int(exc.code),
        exc.description.encode(),
        {"Content-Type": "application/json", "x-amzn-ErrorType": exc.error_type},
    )


def _flag(request: AwsRequest, name: str, body: dict[str, Any] | None = None) -> bool:
    value = request.query_value(name)
    if value is None and body is not None:
        value = body.get(name)
    return str(value).lower() == "true"


class _Handlers:
    def __init__(self, core: IotCore) -> None:
        self.core = core
        # Status of a certificate before an UpdateCertificate, keyed by the request object.
        self._status_before: dict[int, str | None] = {}

    # Certificates we issue ----------------------------------------------------------------
    def create_keys_and_certificate(self, request: AwsRequest) -> AwsResponse:
        key = new_rsa_key()
        key_pair = {
            "PublicKey": public_key_pem(key.public_key()),
            "PrivateKey": private_key_pem(key),
        }
        return self._issue(request, key.public_key(), AWS_IOT_CERTIFICATE_SUBJECT, keyPair=key_pair)

    def create_certificate_from_csr(self, request: AwsRequest) -> AwsResponse:
        body = request.json()
        text = body.get("certificateSigningRequest") or ""
        csr = _load_pem(
            x509.load_pem_x509_csr,
            text,
            "InvalidRequestException",
            "certificateSigningRequest is not a PEM certificate signing request",
        )
        if isinstance(csr, AwsResponse):
            return csr
        if not csr.is_signature_valid:
            return json_error(
                "InvalidRequestException",
                "the certificate signing request's signature does not verify with its own key",
            )
        problem = device_key_problem(csr.public_key())
        if problem:
            return json_error(
                "InvalidRequestException",
                f"The key in the certificate signing request is not valid: {problem}",
            )
        # AWS keeps the CSR's subject and signs the CSR's own public key.
        return self._issue(request, csr.public_key(), csr.subject)

    def _issue(
        self, request: AwsRequest, public_key: Any, subject: Any, **extra: Any
    ) -> AwsResponse:
        """Sign `public_key` for `subject` with our CA, store the certificate (ACTIVE when the
        request sets setAsActive) and answer its ARN, id and PEM, plus `extra` fields."""
        cert = self.core.ca.issue_device_certificate(public_key, subject)
        status = "ACTIVE" if _flag(request, "setAsActive") else "INACTIVE"
        stored = self._store(request, certificate_pem(cert), status)
        if isinstance(stored, AwsResponse):
            return stored
        return json_response(
            {
                "certificateArn": stored.arn,
                "certificateId": stored.certificate_id,
                "certificatePem": stored.certificate_pem,
                **extra,
            }
        )

    def _store(self, request: AwsRequest, pem: str, status: str) -> Any:
        backend = self.core.backend(request.region)
        try:
            stored = backend.register_certificate_without_ca(pem, status)
        except JsonRESTError as exc:
            return _moto_error(exc)
        _record_validity(stored)
        self.core.invalidate()
        return stored

    # Certificates devices bring -------------------------------------------------------------
    def register_certificate_without_ca(self, request: AwsRequest) -> AwsResponse:
        body = request.json()
        parsed = _parse_certificate(body.get("certificatePem"))
        if isinstance(parsed, AwsResponse):
            return parsed
        status = body.get("status") or "INACTIVE"
        if status not in CERTIFICATE_STATUSES:
            return _invalid_status(status)
        stored = self._store(request, body["certificatePem"], status)
        if isinstance(stored, AwsResponse):
            return stored
        return json_response({"certificateArn": stored.arn, "certificateId": stored.certificate_id})

    def register_certificate(self, request: AwsRequest) -> AwsResponse:
        body = request.json()
        parsed = _parse_certificate(body.get("certificatePem"))
        if isinstance(parsed, AwsResponse):
            return parsed
        backend = self.core.backend(request.region)
        ca = _signing_ca(backend, parsed, body.get("caCertificatePem"))
        if isinstance(ca, AwsResponse):
            return ca
        status = body.get("status") or ("ACTIVE" if _flag(request, "setAsActive") else "INACTIVE")
        if status not in CERTIFICATE_STATUSES:
            return _invalid_status(status)
        try:
            stored = backend.register_certificate(
                certificate_pem=body["certificatePem"],
                ca_certificate_pem=ca.certificate_pem,
                set_as_active=False,
                status=status,
            )
        except JsonRESTError as exc:
            return _moto_error(exc)
        _record_validity(stored)
        self.core.invalidate()
        return json_response({"certificateArn": stored.arn, "certificateId": stored.certificate_id})

    def check_ca_certificate(self, request: AwsRequest) -> AwsResponse | None:
        """RegisterCACertificate: refuse what is not a certificate before moto fails on it."""
        pem = request.json().get("caCertificate")
        try:
            x509.load_pem_x509_certificate(str(pem or "").encode())
        except ValueError as exc:
            return json_error(
                "CertificateValidationException", f"caCertificate is not a PEM certificate: {exc}"
            )
        return None  # moto registers it

    # Endpoint, policies -------------------------------------------------------------------
    def describe_endpoint(self, request: AwsRequest) -> AwsResponse | None:
        if request.query_value("endpointType") in DATA_ENDPOINT_TYPES:
            return json_response({"endpointAddress": self.core.endpoint_address})
        return None  # other endpoint types: moto's answer

    def check_policy_document(self, request: AwsRequest) -> AwsResponse | None:
        """CreatePolicy, CreatePolicyVersion: a document the evaluator cannot compile (bad
        JSON or grammar, a condition operator that is not IAM's, a condition value its operator
        cannot read) is refused before moto stores it, as AWS does (MalformedPolicyException,
        "Policy document is Malformed: ...";
        https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html)."""
        document = request.json().get("policyDocument")
        if not isinstance(document, str):
            return json_error("MalformedPolicyException", "policyDocument is required")
        try:
            CompiledPolicy.parse(document, strict=True)
        except PolicyDocumentError as exc:
            return json_error("MalformedPolicyException", f"Policy document is Malformed: {exc}")
        return None

    # Status changes ---------------------------------------------------------------------------
    def before_update_certificate(self, request: AwsRequest) -> AwsResponse | None:
        new_status = request.query_value("newStatus")
        if new_status not in CERTIFICATE_STATUSES:
            return _invalid_status(new_status)
        if new_status in _INTERNAL_STATUSES:
            return json_error(
                "InvalidRequestException",
                f"status {new_status} is used internally by AWS IoT and cannot be set",
            )
        certificate_id = request.path_params.get("certificateId", "")
        cert = self.core.backend(request.region).certificates.get(certificate_id)
        self._status_before[id(request)] = cert.status if cert is not None else None
        return None

    def after_update_certificate(self, request: AwsRequest, _status: int, _body: bytes) -> None:
        before = self._status_before.pop(id(request), None)
        certificate_id = request.path_params.get("certificateId", "")
        cert = self.core.backend(request.region).certificates.get(certificate_id)
        self.core.invalidate()
        if cert is not None and cert.status != before:
            self.core.notify(certificate_id, cert.status)

    def delete_certificate(self, request: AwsRequest) -> AwsResponse:
        """DeleteCertificate, answered here: moto's check walks every policy attachment as if
        it were a certificate (a policy on a thing group makes it fail with a 500), and
        forceDelete left the certificate's policy attachments behind."""
        certificate_id = request.path_params.get("certificateId", "")
        backend = self.core.backend(request.region)
        cert = backend.certificates.get(certificate_id)
        try:
            if cert is None:
                raise ResourceNotFoundException(f"certificate {certificate_id} does not exist")
            if cert.status == "ACTIVE":
                raise CertificateStateException(
                    "Certificate must be deactivated (not ACTIVE) before deletion.", certificate_id
                )
            things = [k[1] for k in list(backend.principal_things) if k[0] == cert.arn]
            if things:
                raise DeleteConflictException(
                    f"Things must be detached before deletion (arn: {cert.arn}, things: "
                    f"{', '.join(things)})"
                )
            policies = [k for k in list(backend.principal_policies) if k[0] == cert.arn]
            if policies and not _flag(request, "forceDelete"):
                raise DeleteConflictException(
                    f"Certificate policies must be detached before deletion (arn: {cert.arn}, "
                    f"policies: {', '.join(k[1] for k in policies)})"
                )
        except JsonRESTError as exc:
            return _moto_error(exc)
        # API_DeleteCertificate: forceDelete deletes a certificate that still has policies.
        for key in policies:
            backend.principal_policies.pop(key, None)
        backend.certificates.pop(certificate_id, None)
        self.core.notify(certificate_id, "DELETED")
        return AwsResponse(200, b"", {"Content-Type": "application/json"})

    def after_attach_thing_principal(self, request: AwsRequest, _s: int, _b: bytes) -> None:
        principal = request.headers.get("x-amzn-principal", "")
        if request.query_value("thingPrincipalType") == "EXCLUSIVE_THING":
            self.core.set_exclusive_thing(principal, request.path_params.get("thingName"))

    def after_detach_thing_principal(self, request: AwsRequest, _s: int, _b: bytes) -> None:
        principal = request.headers.get("x-amzn-principal", "")
        thing_name = request.path_params.get("thingName")
        if self.core.exclusive_thing(principal) == thing_name:
            self.core.set_exclusive_thing(principal, None)

    def invalidate(self, _request: AwsRequest, _status: int, _body: bytes) -> None:
        self.core.invalidate()

    # Policy evaluation as an API ------------------------------------------------------------
    def _principal_and_policies(self, request: AwsRequest, body: dict[str, Any], client_id: Any):
        principal_arn = body.get("principal")
        if not principal_arn:
            return json_error(
                "InvalidRequestException", "principal (a certificate ARN) is required"
            )
        if ":cert/" not in str(principal_arn):
            return json_error(
                "InvalidRequestException",
                f"principal {principal_arn!r} is not a certificate ARN; the emulator evaluates "
                "X.509 certificate principals only (not Amazon Cognito identities)",
            )
        backend = self.core.backend(request.region)
        principal = self.core.principal_for_arn(backend, principal_arn)
        if principal is None:
            return _moto_error(ResourceNotFoundException(f"certificate {principal_arn} not found"))
        return principal, self.core.attached_policies(backend, principal, client_id)

    def test_authorization(self, request: AwsRequest) -> AwsResponse:
        body = request.json()
        client_id = request.query_value("clientId")
        found = self._principal_and_policies(request, body, client_id)
        if isinstance(found, AwsResponse):
            return found
        principal, attached = found
        backend = self.core.backend(request.region)
        skip = set(body.get("policyNamesToSkip") or [])
        policies = {p.name: p for p in attached if p.name not in skip}
        for name in body.get("policyNamesToAdd") or []:
            if name not in backend.policies:
                return _moto_error(ResourceNotFoundException(f"policy {name} not found"))
            policies.setdefault(name, backend.policies[name])
        compiled = []
        unreadable = set()
        for name, policy in policies.items():
            program = self.core.compile_policy(policy)
            if program is None:
                unreadable.add(name)  # only older state can hold one: it denies (fail closed)
            else:
                compiled.append((name, program))
        auth_infos = body.get("authInfos") or []
        if not 1 <= len(auth_infos) <= 10:
            return json_error("InvalidRequestException", "authInfos must hold 1 to 10 entries")
        # No connection, so no aws:SourceIp: AWS does not document one for TestAuthorization,
        # and the key is treated as missing (IAM's missing-key rules). The time keys are now.
        context = self.core.policy_context(principal, client_id or "")
        context.update(time_context(time.time()))
        if not client_id:  # without a client id, ${iot:ClientId} has no value
            context.pop("iot:ClientId", None)
        results = []
        for info in auth_infos:
            action = AUTH_ACTIONS.get(info.get("actionType"))
            resources = info.get("resources") or []
            if action is None or not resources:
                return json_error(
                    "InvalidRequestException",
                    f"each authInfo needs actionType ({', '.join(AUTH_ACTIONS)}) and resources",
                )
            results.append(
                _auth_result(info, policies, compiled, action, resources, context, unreadable)
            )
        return json_response({"authResults": results})

    def get_effective_policies(self, request: AwsRequest) -> AwsResponse:
        body = request.json()
        found = self._principal_and_policies(request, body, request.query_value("thingName"))
        if isinstance(found, AwsResponse):
            return found
        _principal, attached = found
        effective = []
        for policy in attached:
            document = policy.document
            effective.append(
                {
                    "policyName": policy.name,
                    "policyArn": policy.arn,
                    "policyDocument": document
                    if isinstance(document, str)
                    else json.dumps(document),
                }
            )
        return json_response({"effectivePolicies": effective})

    def root_ca(self, _request: AwsRequest) -> AwsResponse:
        return AwsResponse(
            200, self.core.ca.root_pem.encode(), {"Content-Type": "application/x-pem-file"}
        )


def _auth_result(
    info: dict[str, Any],
    policies: dict[str, Any],
    compiled: list,
    action: str,
    resources: list[str],
    context: dict[str, str],
    unreadable: Collection[str] = (),
) -> dict[str, Any]:
    """One API_AuthResult; with several resources, every one must be allowed."""
    allowing: set[str] = set()
    denying: set[str] = set(unreadable)
    silent: set[str] = set()
    missing: set[str] = set()
    all_allowed = True
    for resource in resources:
        verdict = explain(compiled, action, resource, context)
        allowing.update(verdict.allowing)
        denying.update(verdict.denying)
        silent.update(verdict.silent)
        missing.update(verdict.missing_context)
        all_allowed = all_allowed and verdict.decision == "ALLOWED"
    decision = "EXPLICIT_DENY" if denying else "ALLOWED" if all_allowed else "IMPLICIT_DENY"

    def refs(names: set[str]) -> list[dict[str, str]]:
        return [
            {"policyName": n, "policyArn": policies[n].arn} for n in sorted(names) if n in policies
        ]

    return {
        "authInfo": {"actionType": info["actionType"], "resources": resources},
        "allowed": {"policies": refs(allowing)},
        "denied": {
            "explicitDeny": {"policies": refs(denying)},
            "implicitDeny": {"policies": refs(silent - allowing - denying)},
        },
        "authDecision": decision,
        "missingContextValues": sorted(missing),
    }


def _record_validity(stored: Any) -> None:
    """DescribeCertificate's `validity` is the certificate's own (moto invents one)."""
    cert = x509.load_pem_x509_certificate(stored.certificate_pem.encode())
    # moto keeps naive UTC datetimes.
    stored.validity_not_before = cert.not_valid_before_utc.replace(tzinfo=None)
    stored.validity_not_after = cert.not_valid_after_utc.replace(tzinfo=None)


def _invalid_status(status: str | None) -> AwsResponse:
    allowed = ", ".join(sorted(CERTIFICATE_STATUSES))
    return json_error(
        "InvalidRequestException", f"status {status!r} is not valid; use one of {allowed}"
    )


def _load_pem(load: Callable[[bytes], Any], pem: str, code: str, what: str) -> Any:
    """`load(pem)`, or the error `code` saying `what` is wrong with the text and why."""
    try:
        return load(pem.encode())
    except ValueError as exc:
        return json_error(code, f"{what}: {exc}")


def _parse_certificate(pem: Any) -> x509.Certificate | AwsResponse:
    if not isinstance(pem, str) or not pem.strip():
        return json_error("InvalidRequestException", "certificatePem is required")
    cert = _load_pem(
        x509.load_pem_x509_certificate,
        pem,
        "CertificateValidationException",
        "certificatePem is not a PEM X.509 certificate",
    )
    if isinstance(cert, AwsResponse):
        return cert
    problem = device_key_problem(cert.public_key())
    if problem:
        # The message AWS returns for a 1024-bit RSA certificate, with the reason appended.
        return json_error(
            "CertificateValidationException", f"The key in the certificate is not valid: {problem}"
        )
    problem = signature_problem(cert)
    if problem:
        return json_error(
            "CertificateValidationException", f"The certificate is not valid: {problem}"
        )
    return cert


def _signing_ca(backend: Any, cert: x509.Certificate, ca_pem: str | None) -> Any:
    """The registered CA that signed `cert` (RegisterCertificate needs one)."""
    candidates = list(backend.ca_certificates.values())
    if ca_pem:
        try:
            wanted = x509.load_pem_x509_certificate(ca_pem.encode())
        except ValueError as exc:
            return json_error(
                "CertificateValidationException", f"caCertificatePem is not a certificate: {exc}"
            )
        candidates = [
            c
            for c in candidates
            if x509.load_pem_x509_certificate(c.certificate_pem.encode()) == wanted
        ]
        if not candidates:
            return json_error(
                "CertificateValidationException",
                "caCertificatePem is not a registered CA certificate: register it first with "
                "RegisterCACertificate, or use RegisterCertificateWithoutCA",
            )
    for ca in candidates:
        ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return ca
    return json_error(
        "CertificateValidationException",
        "no registered CA certificate signed this certificate "
        f"(issuer {cert.issuer.rfc4514_string()}): register its CA with "
        "RegisterCACertificate, or use RegisterCertificateWithoutCA",
    )
