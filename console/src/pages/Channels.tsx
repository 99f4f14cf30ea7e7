import { Alert, Button, Checkbox, FileInput, Paper, PasswordInput, SegmentedControl, SimpleGrid, Stack, Text, Textarea, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, ApiError, call } from "../api/client";
import { CredentialFileError, fieldErrors, readCertificateFile } from "../channels/credentials";
import { Failure, Loading } from "../components/States";
import { useCan } from "../session";

/** The email channel: sender and identity, shown and editable. */
function EmailChannel({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const can = useCan();
  const queryClient = useQueryClient();
  const path = { "application-id": appId };
  const channel = useQuery({
    queryKey: ["channel-email", appId],
    queryFn: async () => {
      const channels = await call(api.GET("/v1/apps/{application-id}/channels", { params: { path } }));
      return channels.Channels?.EMAIL ? call(api.GET("/v1/apps/{application-id}/channels/email", { params: { path } })) : null;
    },
  });
  const [fromAddress, setFromAddress] = useState("");
  const [identity, setIdentity] = useState("");
  const [enabled, setEnabled] = useState(true);
  useEffect(() => {
    if (channel.data) {
      setFromAddress(channel.data.FromAddress ?? "");
      setIdentity(channel.data.Identity ?? "");
      setEnabled(channel.data.Enabled ?? true);
    }
  }, [channel.data]);
  const save = useMutation({
    mutationFn: () =>
      call(
        api.PUT("/v1/apps/{application-id}/channels/email", {
          params: { path },
          body: { FromAddress: fromAddress, Identity: identity, Enabled: enabled },
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["channel-email", appId] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  if (channel.isPending) return <Loading />;
  const errors = refusedFields(save.error, ["FromAddress", "Identity"]);
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} data-testid="channel-email">
      <Stack maw={480}>
        <Title order={4}>{t("channel.EMAIL")}</Title>
        {channel.error && <Failure error={channel.error} />}
        <TextInput label={t("channels.fromAddress")} value={fromAddress} onChange={(e) => setFromAddress(e.currentTarget.value)} required {...onField(errors, "FromAddress")} />
        <TextInput label={t("channels.identity")} value={identity} onChange={(e) => setIdentity(e.currentTarget.value)} required {...onField(errors, "Identity")} />
        <Checkbox label={t("channels.enabled")} checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        {save.error && Object.keys(errors).length === 0 && <Failure error={save.error} />}
        {save.isSuccess && <Alert color="green">{t("templates.saved")}</Alert>}
        <Button type="submit" loading={save.isPending} disabled={!can("UpdateEmailChannel")}>
          {t("channels.save")}
        </Button>
      </Stack>
    </Paper>
  );
}

/** FCM: the service-account JSON is written, never read back (the API does not return credentials). */
function FcmChannel({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const can = useCan();
  const path = { "application-id": appId };
  const channel = useQuery({
    queryKey: ["channel-gcm", appId],
    queryFn: async () => {
      const channels = await call(api.GET("/v1/apps/{application-id}/channels", { params: { path } }));
      return channels.Channels?.GCM ?? null;
    },
  });
  const [serviceJson, setServiceJson] = useState("");
  const save = useMutation({
    mutationFn: () =>
      call(
        api.PUT("/v1/apps/{application-id}/channels/gcm", {
          params: { path },
          body: { ServiceJson: serviceJson, DefaultAuthenticationMethod: "TOKEN", Enabled: true },
        }),
      ),
    onSuccess: () => setServiceJson(""),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  const errors = refusedFields(save.error, ["ServiceJson"]);
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} data-testid="channel-gcm">
      <Stack maw={480}>
        <Title order={4}>{t("channel.GCM")}</Title>
        <PasswordInput
          label={t("channels.serviceJson")}
          description={channel.data || save.isSuccess ? t("channels.credentialsStored") : t("channels.credentialsNone")}
          value={serviceJson}
          onChange={(e) => setServiceJson(e.currentTarget.value)}
          required
          {...onField(errors, "ServiceJson")}
        />
        {save.error && Object.keys(errors).length === 0 && <Failure error={save.error} />}
        <Button type="submit" loading={save.isPending} disabled={!can("UpdateGcmChannel")}>
          {t("channels.save")}
        </Button>
      </Stack>
    </Paper>
  );
}

type ChannelPath =
  | "/v1/apps/{application-id}/channels/sms"
  | "/v1/apps/{application-id}/channels/voice"
  | "/v1/apps/{application-id}/channels/apns"
  | "/v1/apps/{application-id}/channels/apns_sandbox"
  | "/v1/apps/{application-id}/channels/apns_voip"
  | "/v1/apps/{application-id}/channels/apns_voip_sandbox"
  | "/v1/apps/{application-id}/channels/adm"
  | "/v1/apps/{application-id}/channels/baidu";

type Method = "TOKEN" | "CERTIFICATE";

interface ChannelField {
  name: string;
  secret?: boolean; // written, never read back: the form starts empty and says whether one is stored
  multiline?: boolean;
  method?: Method; // shown, and sent, only with this DefaultAuthenticationMethod
}

/** A field's share of a refused save: the server's message under it (in English, marked so) and aria-invalid. */
function onField(errors: Record<string, string>, name: string, english = true) {
  return {
    error: errors[name] && <span lang={english ? "en" : undefined}>{errors[name]}</span>,
    "aria-invalid": Boolean(errors[name]),
  };
}

function refusedFields(error: unknown, fields: readonly string[]): Record<string, string> {
  return error instanceof ApiError ? fieldErrors(error.message, fields) : {};
}

/** Where a refused save is shown: on the fields the server's message names, else above the button. */
function saveErrors(error: unknown, fields: readonly string[], t: (key: string) => string): Record<string, string> {
  if (error instanceof CredentialFileError) {
    return error.reason === "password"
      ? { CertificatePassword: t("channels.fileWrongPassword") }
      : { CertificateFile: t("channels.fileFormat") };
  }
  return refusedFields(error, fields);
}

/** A channel whose request is a few named settings and secrets (SMS, voice, APNs, ADM, Baidu): shown, and saved
 * with PUT. APNs channels choose between a token key and a certificate, read from a .p12 or PEM file. */
function SettingsChannel({ appId, title, path, fields, stored, operation }: {
  appId: string;
  title: string;
  path: ChannelPath;
  fields: ChannelField[];
  stored: (answer: Record<string, unknown>) => boolean; // whether secrets are stored
  operation: string;
}) {
  const { t } = useTranslation();
  const can = useCan();
  const queryClient = useQueryClient();
  const params = { path: { "application-id": appId } };
  const channel = useQuery({
    queryKey: ["channel", path, appId],
    queryFn: async () => {
      const channels = await call(api.GET("/v1/apps/{application-id}/channels", { params }));
      const type = path.split("/").pop()!.toUpperCase();
      return channels.Channels?.[type] ? ((await call(api.GET(path, { params }))) as Record<string, unknown>) : null;
    },
  });
  const [values, setValues] = useState<Record<string, string>>({});
  const [enabled, setEnabled] = useState(true);
  const methods = fields.some((field) => field.method);
  const [method, setMethod] = useState<Method>("TOKEN");
  const [file, setFile] = useState<File | null>(null);
  const [filePassword, setFilePassword] = useState("");
  useEffect(() => {
    if (channel.data) {
      setValues(Object.fromEntries(fields.filter((f) => !f.secret).map((f) => [f.name, String(channel.data?.[f.name] ?? "")])));
      setEnabled(channel.data.Enabled !== false);
      if (channel.data.DefaultAuthenticationMethod === "CERTIFICATE") setMethod("CERTIFICATE");
    }
  }, [channel.data, fields]);
  const shown = fields.filter((field) => !field.method || field.method === method);
  const save = useMutation({
    mutationFn: async () => {
      const body: Record<string, unknown> = Object.fromEntries(
        shown.map((field) => [field.name, values[field.name] ?? ""]).filter(([, value]) => value.trim() !== ""),
      );
      if (methods) body.DefaultAuthenticationMethod = method;
      if (methods && method === "CERTIFICATE" && file) {
        const pem = await readCertificateFile(file, filePassword);
        Object.assign(body, { Certificate: pem.certificate, PrivateKey: pem.privateKey });
      }
      return call(api.PUT(path, { params, body: { ...body, Enabled: enabled } as never }));
    },
    onSuccess: () => {
      setValues((current) => Object.fromEntries(Object.entries(current).filter(([name]) => !fields.find((f) => f.name === name)?.secret)));
      setFile(null);
      setFilePassword("");
      void queryClient.invalidateQueries({ queryKey: ["channel", path, appId] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  if (channel.isPending) return <Loading />;
  const set = (name: string, value: string) => setValues({ ...values, [name]: value });
  const names = [...shown.map((field) => field.name), ...(method === "CERTIFICATE" ? ["CertificateFile", "CertificatePassword"] : [])];
  const errors = save.error ? saveErrors(save.error, names, t) : {};
  const fromFile = file && (errors.Certificate ?? errors.PrivateKey); // the PEM the page read from the chosen file
  if (fromFile) errors.CertificateFile = fromFile;
  const invalid = (name: string) => onField(errors, name, save.error instanceof ApiError);
  const description = channel.data && stored(channel.data) ? t("channels.credentialsStored") : t("channels.credentialsNone");
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} data-testid={`channel-${path.split("/").pop()}`}>
      <Stack maw={480}>
        <Title order={4}>{title}</Title>
        {channel.error && <Failure error={channel.error} />}
        {methods && (
          <Stack gap={4}>
            <Text size="sm" fw={500} id={`${path}-method`}>
              {t("channels.method")}
            </Text>
            <SegmentedControl
              aria-labelledby={`${path}-method`}
              value={method}
              onChange={(value) => setMethod(value as Method)}
              data={[
                { value: "TOKEN", label: t("channels.method.TOKEN") },
                { value: "CERTIFICATE", label: t("channels.method.CERTIFICATE") },
              ]}
            />
          </Stack>
        )}
        {methods && method === "CERTIFICATE" && (
          <>
            <FileInput
              label={t("channels.field.CertificateFile")}
              description={description}
              accept=".p12,.pfx,.pem,.crt,.key"
              value={file}
              onChange={setFile}
              clearable
              {...invalid("CertificateFile")}
            />
            <PasswordInput
              label={t("channels.field.CertificatePassword")}
              value={filePassword}
              onChange={(e) => setFilePassword(e.currentTarget.value)}
              {...invalid("CertificatePassword")}
            />
          </>
        )}
        {shown.map((field) => {
          const label = t(`channels.field.${field.name}`);
          const value = values[field.name] ?? "";
          const common = { label, value, ...invalid(field.name), onChange: (e: { currentTarget: { value: string } }) => set(field.name, e.currentTarget.value) };
          if (field.secret) {
            return field.multiline ? (
              <Textarea key={field.name} {...common} description={description} autosize minRows={3} maxRows={6} />
            ) : (
              <PasswordInput key={field.name} {...common} description={description} />
            );
          }
          return <TextInput key={field.name} {...common} />;
        })}
        <Checkbox label={t("channels.enabled")} checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        {save.error && Object.keys(errors).length === 0 && <Failure error={save.error} />}
        {save.isSuccess && <Alert color="green">{t("templates.saved")}</Alert>}
        <Button type="submit" loading={save.isPending} disabled={!can(operation)}>
          {t("channels.save")}
        </Button>
      </Stack>
    </Paper>
  );
}

const NO_FIELDS: ChannelField[] = [];
const SMS_FIELDS: ChannelField[] = [{ name: "SenderId" }, { name: "ShortCode" }];
const APNS_FIELDS: ChannelField[] = [
  { name: "BundleId", method: "TOKEN" },
  { name: "TeamId", method: "TOKEN" },
  { name: "TokenKeyId", method: "TOKEN" },
  { name: "TokenKey", secret: true, multiline: true, method: "TOKEN" },
  { name: "Certificate", secret: true, multiline: true, method: "CERTIFICATE" },
  { name: "PrivateKey", secret: true, multiline: true, method: "CERTIFICATE" },
];
const ADM_FIELDS: ChannelField[] = [{ name: "ClientId" }, { name: "ClientSecret", secret: true }];
const BAIDU_FIELDS: ChannelField[] = [
  { name: "ApiKey", secret: true },
  { name: "SecretKey", secret: true },
];
const apnsStored = (answer: Record<string, unknown>) => answer.HasTokenKey === true || answer.HasCredential === true;
const credentialStored = (answer: Record<string, unknown>) => answer.HasCredential === true;
const nothingStored = () => false;

/** Each channel of settings and secrets, in the page's order: its type (its path is the type in lower case), its
 * fields and whether the answer says secrets are stored. */
const SETTINGS_CHANNELS: [string, ChannelField[], (answer: Record<string, unknown>) => boolean][] = [
  ["SMS", SMS_FIELDS, nothingStored],
  ["VOICE", NO_FIELDS, nothingStored],
  ["APNS", APNS_FIELDS, apnsStored],
  ["APNS_SANDBOX", APNS_FIELDS, apnsStored],
  ["APNS_VOIP", APNS_FIELDS, apnsStored],
  ["APNS_VOIP_SANDBOX", APNS_FIELDS, apnsStored],
  ["ADM", ADM_FIELDS, credentialStored],
  ["BAIDU", BAIDU_FIELDS, credentialStored],
];

/** Update{Stem}Channel, the operation a role must have to save: APNS_VOIP_SANDBOX -> UpdateApnsVoipSandboxChannel. */
function updateOperation(type: string): string {
  const stem = type.split("_").map((word) => word[0] + word.slice(1).toLowerCase());
  return `Update${stem.join("")}Channel`;
}

export default function Channels() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  return (
    <Stack>
      <Title order={2}>{t("channels.title")}</Title>
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <EmailChannel appId={appId} />
        <FcmChannel appId={appId} />
        {SETTINGS_CHANNELS.map(([type, fields, stored]) => (
          <SettingsChannel
            key={type}
            appId={appId}
            title={t(`channel.${type}`)}
            path={`/v1/apps/{application-id}/channels/${type.toLowerCase()}` as ChannelPath}
            fields={fields}
            stored={stored}
            operation={updateOperation(type)}
          />
        ))}
      </SimpleGrid>
    </Stack>
  );
}
