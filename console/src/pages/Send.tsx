import { Alert, Button, SegmentedControl, Stack, Textarea, TextInput, Title } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { Failure } from "../components/States";
import { useCan } from "../session";

type Channel = "EMAIL" | "SMS";

/** A one-off message to an address (SendMessages): checks a channel works before a campaign relies on it. */
export default function Send() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const can = useCan();
  const [channel, setChannel] = useState<Channel>("EMAIL");
  const [address, setAddress] = useState("");
  const [subject, setSubject] = useState("");
  const [body, setBody] = useState("");
  const send = useMutation({
    mutationFn: () => {
      const configuration =
        channel === "EMAIL"
          ? { EmailMessage: { SimpleEmail: { Subject: { Data: subject }, TextPart: { Data: body } } } }
          : { SMSMessage: { Body: body } };
      return call(
        api.POST("/v1/apps/{application-id}/messages", {
          params: { path: { "application-id": appId } },
          body: { Addresses: { [address]: { ChannelType: channel } }, MessageConfiguration: configuration },
        }),
      );
    },
  });
  const result = send.data?.Result?.[address];
  const allowed = can("SendMessages");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    send.mutate();
  };
  return (
    <Stack maw={560} component="form" onSubmit={submit}>
      <Title order={2}>{t("send.title")}</Title>
      {!allowed && (
        <Alert color="yellow" data-testid="not-allowed">
          {t("send.notAllowed")}
        </Alert>
      )}
      <SegmentedControl
        value={channel}
        onChange={(value) => setChannel(value as Channel)}
        data={[
          { value: "EMAIL", label: t("channel.EMAIL") },
          { value: "SMS", label: t("channel.SMS") },
        ]}
      />
      <TextInput
        label={channel === "EMAIL" ? t("send.emailAddress") : t("send.phoneNumber")}
        value={address}
        onChange={(e) => setAddress(e.currentTarget.value)}
        required
      />
      {channel === "EMAIL" && (
        <TextInput label={t("send.subject")} value={subject} onChange={(e) => setSubject(e.currentTarget.value)} required />
      )}
      <Textarea label={t("send.body")} value={body} onChange={(e) => setBody(e.currentTarget.value)} required autosize minRows={4} />
      <Button type="submit" disabled={!allowed} loading={send.isPending}>
        {t("send.submit")}
      </Button>
      {send.error && <Failure error={send.error} />}
      {result && (
        <Alert color={result.DeliveryStatus === "SUCCESSFUL" ? "green" : "red"} data-testid="send-result">
          {t("send.result", { status: t(`deliveryStatus.${result.DeliveryStatus}`, { defaultValue: result.DeliveryStatus }), message: result.StatusMessage ?? "" })}
        </Alert>
      )}
    </Stack>
  );
}
