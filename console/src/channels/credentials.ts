// Credential files for the channel forms, read in the browser: an APNs certificate arrives as the .p12 file Keychain
// exports (or as PEM), but Pinpoint's UpdateApns*Channel takes PEM text (Certificate, PrivateKey), so the page turns
// the file into those two members before the call; the file itself is never sent. Web Crypto cannot open PKCS #12
// (nor its RC2 and 3DES ciphers, which Keychain still uses), so node-forge does it, loaded only when a .p12 is chosen.

/** Why a credential file could not be read: the password does not open it, or it is not what the field takes. */
export class CredentialFileError extends Error {
  constructor(readonly reason: "password" | "format") {
    super(reason);
  }
}

export interface CertificatePem {
  certificate: string;
  privateKey: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The certificate and the private key of a PEM file holding both (the blocks in any order). */
export function splitPem(text: string): CertificatePem {
  let certificate = "";
  let privateKey = "";
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (match[1] === "CERTIFICATE" && !certificate) certificate = `${match[0]}\n`;
    else if (match[1].endsWith("PRIVATE KEY") && !privateKey) privateKey = `${match[0]}\n`;
  }
  if (!certificate || !privateKey) throw new CredentialFileError("format");
  return { certificate, privateKey };
}

/** The first certificate and private key of a PKCS #12 file, as PEM. */
export async function readPkcs12(bytes: Uint8Array, password: string): Promise<CertificatePem> {
  const forge = (await import("node-forge")).default;
  let p12;
  try {
    const der = forge.util.createBuffer(forge.util.binary.raw.encode(bytes));
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), password);
  } catch (error) {
    // forge says "Invalid password?" when the file's MAC does not verify with the password given.
    throw new CredentialFileError(/password/i.test(String(error)) ? "password" : "format");
  }
  const certificates = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag] ?? [];
  const keyBags = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag })[forge.pki.oids.keyBag] ?? []),
  ];
  const certificate = certificates.find((bag) => bag.cert)?.cert;
  const key = keyBags.find((bag) => bag.key)?.key;
  if (!certificate || !key) throw new CredentialFileError("format");
  const unix = (pem: string) => pem.replace(/\r\n/g, "\n"); // forge writes CRLF; PEM files are usually LF
  return { certificate: unix(forge.pki.certificateToPem(certificate)), privateKey: unix(forge.pki.privateKeyToPem(key)) };
}

/** A chosen certificate file as PEM: a .p12/.pfx opened with the password, anything else read as PEM text. */
export async function readCertificateFile(file: File, password: string): Promise<CertificatePem> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (/\.(p12|pfx)$/i.test(file.name)) return readPkcs12(bytes, password);
  return splitPem(new TextDecoder().decode(bytes));
}

/**
 * The fields a server's refusal names, each with the message, so the form can show it on the field itself
 * ("TokenKey must be the EC (P-256) key of an APNs .p8 file" belongs to TokenKey). In "X and Y must be given with
 * Z" only X and Y are at fault. A message naming none of the fields belongs to the form as a whole: {}.
 */
export function fieldErrors(message: string, fields: readonly string[]): Record<string, string> {
  const atFault = message.split(" must be given with ")[0];
  const named = fields.filter((field) => new RegExp(`\\b${field}\\b`).test(atFault));
  return Object.fromEntries(named.map((field) => [field, message]));
}
