"""MANSCDP (GB/T 28181 XML control bodies): parsing, building, times and catalogs."""

from camgrid.gb28181.manscdp.builders import (
    alarm_notify,
    alarm_response,
    alarm_subscribe_query,
    catalog_notify,
    catalog_query,
    catalog_response_pages,
    catalog_subscribe_query,
    device_config_basic,
    device_control_alarm_reset,
    device_control_guard,
    device_control_ptz,
    device_control_record,
    device_control_teleboot,
    device_info_query,
    device_info_response,
    device_status_query,
    device_status_response,
    keepalive_notify,
    record_info_query,
    record_info_response_pages,
    response_result,
)
from camgrid.gb28181.manscdp.catalog import CatalogAssembler, catalog_item_to_channel
from camgrid.gb28181.manscdp.paging import PagedAssembler
from camgrid.gb28181.manscdp.records import RECORD_TYPES, RecordAssembler, record_item_to_row
from camgrid.gb28181.manscdp.codec import (
    ITEM_LISTS,
    MAX_BODY_SIZE,
    ROOTS,
    ManscdpError,
    ManscdpMessage,
    decode_body,
    encode_manscdp,
    parse_manscdp,
)
from camgrid.gb28181.manscdp.times import CHINA_TZ, format_gb_time, parse_gb_time

__all__ = [
    "CHINA_TZ", "ITEM_LISTS", "MAX_BODY_SIZE", "RECORD_TYPES", "ROOTS",
    "CatalogAssembler", "ManscdpError", "ManscdpMessage", "PagedAssembler", "RecordAssembler",
    "alarm_notify", "alarm_response", "alarm_subscribe_query", "catalog_item_to_channel", "catalog_notify", "catalog_query",
    "catalog_response_pages", "catalog_subscribe_query", "decode_body", "device_config_basic",
    "device_control_alarm_reset", "device_control_guard", "device_control_ptz", "device_control_record",
    "device_control_teleboot", "device_info_query", "device_info_response", "device_status_query",
    "device_status_response", "encode_manscdp", "format_gb_time", "keepalive_notify", "parse_gb_time",
    "parse_manscdp", "record_info_query", "record_info_response_pages", "record_item_to_row", "response_result",
]
