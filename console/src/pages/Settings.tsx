import { Alert, Button, Group, NumberInput, Paper, Stack, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { Failure, Loading } from "../components/States";
import { useCan } from "../session";

type Limit = number | "";

/** The project's defaults for every campaign: quiet time and message limits (Get/UpdateApplicationSettings). */
export default function Settings() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const can = useCan();
  const queryClient = useQueryClient();
  const path = { "application-id": appId };
  const settings = useQuery({
    queryKey: ["app-settings", appId],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/settings", { params: { path } })),
  });
  const [quietStart, setQuietStart] = useState("");
  const [quietEnd, setQuietEnd] = useState("");
  const [daily, setDaily] = useState<Limit>("");
  const [total, setTotal] = useState<Limit>("");
  useEffect(() => {
    if (!settings.data) return;
    setQuietStart(settings.data.QuietTime?.Start ?? "");
    setQuietEnd(settings.data.QuietTime?.End ?? "");
    setDaily(settings.data.Limits?.Daily ?? "");
    setTotal(settings.data.Limits?.Total ?? "");
  }, [settings.data]);
  const save = useMutation({
    mutationFn: () =>
      call(
        api.PUT("/v1/apps/{application-id}/settings", {
          params: { path },
          body: {
            QuietTime: quietStart || quietEnd ? { Start: quietStart, End: quietEnd } : undefined,
            Limits: { Daily: daily === "" ? undefined : daily, Total: total === "" ? undefined : total },
          },
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["app-settings", appId] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  if (settings.isPending) return <Loading />;
  return (
    <Stack>
      <Title order={2}>{t("settings.title")}</Title>
      {settings.error && <Failure error={settings.error} />}
      <Paper withBorder p="md" component="form" onSubmit={submit}>
        <Stack maw={480}>
          <Group>
            <TextInput label={t("campaigns.quietStart")} placeholder="22:00" value={quietStart} onChange={(e) => setQuietStart(e.currentTarget.value)} />
            <TextInput label={t("campaigns.quietEnd")} placeholder="08:00" value={quietEnd} onChange={(e) => setQuietEnd(e.currentTarget.value)} />
          </Group>
          <NumberInput label={t("campaigns.dailyLimit")} min={0} value={daily} onChange={(value) => setDaily(value === "" ? "" : Number(value))} />
          <NumberInput label={t("settings.totalLimit")} min={0} value={total} onChange={(value) => setTotal(value === "" ? "" : Number(value))} />
          {save.error && <Failure error={save.error} />}
          {save.isSuccess && <Alert color="green">{t("templates.saved")}</Alert>}
          <Button type="submit" loading={save.isPending} disabled={!can("UpdateApplicationSettings")}>
            {t("settings.save")}
          </Button>
        </Stack>
      </Paper>
    </Stack>
  );
}
