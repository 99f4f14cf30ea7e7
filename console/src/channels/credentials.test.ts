import forge from "node-forge";
import { describe, expect, it } from "vitest";
import { CredentialFileError, fieldErrors, readPkcs12, splitPem } from "./credentials";

function certificateAndKey() {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 });
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = keys.publicKey;
  certificate.serialNumber = "01";
  certificate.validity.notBefore = new Date("2026-01-01T00:00:00Z");
  certificate.validity.notAfter = new Date("2027-01-01T00:00:00Z");
  const name = [{ name: "commonName", value: "Apple Push Services: com.example.shop" }];
  certificate.setSubject(name);
  certificate.setIssuer(name);
  certificate.sign(keys.privateKey);
  return { certificate, key: keys.privateKey };
}

const { certificate, key } = certificateAndKey();

function p12(password: string, algorithm: "3des" | "aes256"): Uint8Array {
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, [certificate], password, { algorithm });
  return forge.util.binary.raw.decode(forge.asn1.toDer(asn1).getBytes());
}

describe("readPkcs12", () => {
  it("answers the certificate and key as PEM, for Keychain's 3DES files and AES ones", async () => {
    for (const algorithm of ["3des", "aes256"] as const) {
      const pem = await readPkcs12(p12("secret", algorithm), "secret");
      expect(pem.certificate).toBe(forge.pki.certificateToPem(certificate).replace(/\r\n/g, "\n"));
      expect(pem.privateKey).toBe(forge.pki.privateKeyToPem(key).replace(/\r\n/g, "\n"));
    }
  });
  it("says when the password does not open the file, and when it is no PKCS #12 file", async () => {
    await expect(readPkcs12(p12("secret", "3des"), "wrong")).rejects.toEqual(new CredentialFileError("password"));
    await expect(readPkcs12(new TextEncoder().encode("not a file"), "")).rejects.toEqual(new CredentialFileError("format"));
  });
});

describe("splitPem", () => {
  it("finds the certificate and the key in either order", () => {
    const certificatePem = forge.pki.certificateToPem(certificate);
    const keyPem = forge.pki.privateKeyToPem(key);
    expect(splitPem(`Bag Attributes\n${keyPem}\nsubject=...\n${certificatePem}`)).toEqual({
      certificate: certificatePem.trimEnd() + "\n",
      privateKey: keyPem.trimEnd() + "\n",
    });
  });
  it("refuses a file without both", () => {
    expect(() => splitPem(forge.pki.certificateToPem(certificate))).toThrow(CredentialFileError);
  });
});

describe("fieldErrors", () => {
  const fields = ["BundleId", "TeamId", "TokenKeyId", "TokenKey"];
  it("puts the server's message on each field it names", () => {
    const message = "TokenKey must be the EC (P-256) key of an APNs .p8 file";
    expect(fieldErrors(message, fields)).toEqual({ TokenKey: message });
  });
  it("blames only the missing members of a group", () => {
    const message = "TeamId and BundleId must be given with TokenKey and TokenKeyId";
    expect(fieldErrors(message, fields)).toEqual({ TeamId: message, BundleId: message });
  });
  it("leaves a message about no field to the form", () => {
    expect(fieldErrors("Rate exceeded", fields)).toEqual({});
  });
});
