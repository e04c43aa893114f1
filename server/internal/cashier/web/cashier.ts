// The cashier page's live status: it watches the payment through PaymentService.WatchPayment
// (server streaming over Connect-Web) and turns the page to "paid" by itself.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { PaymentService } from "../../../../gen/ts/paycenter/v1/payment_pb.js";
import { PaymentStatus } from "../../../../gen/ts/paycenter/v1/types_pb.js";

const root = document.getElementById("cashier") as HTMLElement;
const statusEl = document.getElementById("status") as HTMLElement;
const client = createClient(
  PaymentService,
  createConnectTransport({ baseUrl: window.location.origin }),
);

const labels: Record<number, string> = {
  [PaymentStatus.PENDING]: "Waiting for payment…",
  [PaymentStatus.SUCCEEDED]: "Paid",
  [PaymentStatus.CLOSED]: "Closed",
  [PaymentStatus.FAILED]: "Failed",
};

function show(status: PaymentStatus) {
  statusEl.textContent = labels[status] ?? "Unknown";
  root.dataset.status = PaymentStatus[status];
}

async function watch(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const res of client.watchPayment({
        tradeNo: root.dataset.tradeNo ?? "",
        cashierToken: root.dataset.token ?? "",
      })) {
        if (res.payment) show(res.payment.status);
      }
      const final = root.dataset.status;
      if (final && final !== "PENDING") return;
    } catch (err) {
      console.warn("watch payment", err);
    }
    // The stream ended early (server restart, network): watch again after a pause.
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 15000)));
  }
}

void watch();
