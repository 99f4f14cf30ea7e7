import { Alert, Button, Checkbox, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
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
    <Paper withBorder p="md" component="form" onSubmit={submit}>
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
    <Paper withBorder p="md" component="form" onSubmit={submit}>
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

export default function Channels() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  return (
    <Stack>
      <Title order={2}>{t("channels.title")}</Title>
      <EmailChannel appId={appId} />
      <FcmChannel appId={appId} />
    </Stack>
  );
}
