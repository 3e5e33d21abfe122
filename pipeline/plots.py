"""The workbook's figures: titled, with labelled axes and units (matplotlib via pandas).

matplotlib is imported inside the functions: the Lambda imports `pipeline` and must not pay
for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

REASON_COLOURS = {"size": "tab:orange", "interval": "tab:blue"}


def batching_timeline(timeline: pd.DataFrame) -> Any:
    """Each raw batch as a segment on a UTC time axis, from its oldest record's arrival (the
    time in its key) to when it was written, at the height of its record count; coloured by
    what closed it (buffer size or interval)."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5))
    for reason, rows in timeline.groupby("closed by"):
        colour = REASON_COLOURS.get(str(reason), "tab:grey")
        ax.hlines(
            rows["records"],
            rows["batch started (UTC)"],
            rows["written (UTC)"],
            colors=colour,
            linewidth=4,
            label=f"closed by {reason}",
        )
        ax.plot(rows["written (UTC)"], rows["records"], "o", color=colour)
    ax.set_title("Firehose raw batches: first record's arrival → object written")
    ax.set_xlabel("time (UTC, HH:MM:SS)")
    ax.set_ylabel("records in the batch")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    fig.autofmt_xdate()
    return ax


def temperature(df: pd.DataFrame) -> Any:
    """Temperature per equipment against the reading number (one reading per second)."""
    table = df.pivot_table(index="sequence", columns="equipment_id", values="temperature_c")
    ax = table.plot(title="temperature by equipment", figsize=(10, 4))
    ax.set_xlabel("reading (sequence number, one per second)")
    ax.set_ylabel("temperature (°C)")
    return ax


def latency_ms(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: device → Firehose (arrival) and device → object written (S3's LastModified,
    whole seconds), in milliseconds. The difference is the time the record spent in the
    buffer."""
    import pandas as pd

    device = df["device_time"]
    return pd.DataFrame(
        {
            "device → Firehose (ms)": (df["arrival_time"] - device).dt.total_seconds() * 1000,
            "device → object written (ms)": (df["written"] - device).dt.total_seconds() * 1000,
        }
    )


def latency(latencies: pd.DataFrame) -> Any:
    """Both latencies as histograms on a logarithmic millisecond axis, so that a few slow
    records do not squash the rest into one bar."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(10, 4))
    values = latencies.to_numpy().ravel()
    values = values[np.isfinite(values) & (values > 0)]
    if len(values):
        bins = np.logspace(np.log10(values.min()), np.log10(values.max()) + 1e-9, 50)
        for column in latencies.columns:
            series = latencies[column][latencies[column] > 0]
            ax.hist(series, bins=bins, alpha=0.6, label=column)
        ax.set_xscale("log")
        ax.legend()
    ax.set_title("end-to-end latency: through IoT Core, and through Firehose's buffer")
    ax.set_xlabel("latency (ms, logarithmic)")
    ax.set_ylabel("records")
    return ax
