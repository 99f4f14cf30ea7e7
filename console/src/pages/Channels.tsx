import { Alert, Button, Checkbox, Paper, PasswordInput, Stack, Textarea, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
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
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} data-testid="channel-email">
      <Stack maw={480}>
        <Title order={4}>{t("channel.EMAIL")}</Title>
        {channel.error && <Failure error={channel.error} />}
        <TextInput label={t("channels.fromAddress")} value={fromAddress} onChange={(e) => setFromAddress(e.currentTarget.value)} required />
        <TextInput label={t("channels.identity")} value={identity} onChange={(e) => setIdentity(e.currentTarget.value)} required />
        <Checkbox label={t("channels.enabled")} checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        {save.error && <Failure error={save.error} />}
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
        />
        {save.error && <Failure error={save.error} />}
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
  | "/v1/apps/{application-id}/channels/apns_sandbox";

interface ChannelField {
  name: string;
  secret?: boolean; // written, never read back: the form starts empty and says whether one is stored
  multiline?: boolean;
}

/** A channel whose request is a few named settings and secrets (SMS, voice, APNs): shown, and saved with PUT. */
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
  useEffect(() => {
    if (channel.data) {
      setValues(Object.fromEntries(fields.filter((f) => !f.secret).map((f) => [f.name, String(channel.data?.[f.name] ?? "")])));
      setEnabled(channel.data.Enabled !== false);
    }
  }, [channel.data, fields]);
  const save = useMutation({
    mutationFn: () => {
      const body = Object.fromEntries(Object.entries(values).filter(([, value]) => value.trim() !== ""));
      return call(api.PUT(path, { params, body: { ...body, Enabled: enabled } as never }));
    },
    onSuccess: () => {
      setValues((current) => Object.fromEntries(Object.entries(current).filter(([name]) => !fields.find((f) => f.name === name)?.secret)));
      void queryClient.invalidateQueries({ queryKey: ["channel", path, appId] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  if (channel.isPending) return <Loading />;
  const set = (name: string, value: string) => setValues({ ...values, [name]: value });
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit} data-testid={`channel-${path.split("/").pop()}`}>
      <Stack maw={480}>
        <Title order={4}>{title}</Title>
        {channel.error && <Failure error={channel.error} />}
        {fields.map((field) => {
          const label = t(`channels.field.${field.name}`);
          const value = values[field.name] ?? "";
          if (field.secret) {
            const description = channel.data && stored(channel.data) ? t("channels.credentialsStored") : t("channels.credentialsNone");
            return field.multiline ? (
              <Textarea key={field.name} label={label} description={description} value={value} onChange={(e) => set(field.name, e.currentTarget.value)} autosize minRows={3} />
            ) : (
              <PasswordInput key={field.name} label={label} description={description} value={value} onChange={(e) => set(field.name, e.currentTarget.value)} />
            );
          }
          return <TextInput key={field.name} label={label} value={value} onChange={(e) => set(field.name, e.currentTarget.value)} />;
        })}
        <Checkbox label={t("channels.enabled")} checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        {save.error && <Failure error={save.error} />}
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
  { name: "BundleId" },
  { name: "TeamId" },
  { name: "TokenKeyId" },
  { name: "TokenKey", secret: true, multiline: true },
];

export default function Channels() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  return (
    <Stack>
      <Title order={2}>{t("channels.title")}</Title>
      <EmailChannel appId={appId} />
      <FcmChannel appId={appId} />
      <SettingsChannel
        appId={appId}
        title={t("channel.SMS")}
        path="/v1/apps/{application-id}/channels/sms"
        fields={SMS_FIELDS}
        stored={() => false}
        operation="UpdateSmsChannel"
      />
      <SettingsChannel
        appId={appId}
        title={t("channel.VOICE")}
        path="/v1/apps/{application-id}/channels/voice"
        fields={NO_FIELDS}
        stored={() => false}
        operation="UpdateVoiceChannel"
      />
      <SettingsChannel
        appId={appId}
        title={t("channel.APNS")}
        path="/v1/apps/{application-id}/channels/apns"
        fields={APNS_FIELDS}
        stored={(answer) => answer.HasTokenKey === true || answer.HasCredential === true}
        operation="UpdateApnsChannel"
      />
      <SettingsChannel
        appId={appId}
        title={t("channel.APNS_SANDBOX")}
        path="/v1/apps/{application-id}/channels/apns_sandbox"
        fields={APNS_FIELDS}
        stored={(answer) => answer.HasTokenKey === true || answer.HasCredential === true}
        operation="UpdateApnsSandboxChannel"
      />
    </Stack>
  );
}
