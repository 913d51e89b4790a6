// The patrol settings tab's words for the selector per manufacturer, in the tab's own (lazily
// loaded) chunk rather than in the first page's bundle: VqdPatrolSettings merges them into the
// console's messages (as vqdMakers) when it opens.

const en = {
  title: 'Sub-stream selector per manufacturer',
  help: "An entry applies to every device whose reported manufacturer contains its key, case ignored. An entry set here comes before the configuration's for the same key; a device's own selector comes before both. The patrol follows a change from its next round.",
  key: 'Manufacturer contains',
  keyPlaceholder: 'e.g. hikvision',
  selector: 'Selector',
  origin: 'From',
  setHere: 'set here',
  fromConfig: 'configuration',
  replaced: 'replaced by the entry set here',
  setBy: 'set by {by}, {time}',
  add: 'Add',
  remove: 'Remove',
  keyNeeded: "Enter a part of the manufacturer's name, e.g. hikvision.",
  saved: 'Saved: devices made by {key} are asked with {dialect} from the next round.',
  removed: "Removed: devices made by {key} get the configuration's selector again from the next round.",
  empty: 'No selector per manufacturer.',
}

const zhCN: typeof en = {
  title: '按厂商的子码流选择方式',
  help: '条目适用于上报厂商名称中包含该关键字的所有设备（不区分大小写）。此处设置的条目优先于配置文件中相同关键字的条目；设备单独的设置优先于两者。巡检从下一轮起按修改执行。',
  key: '厂商名称包含',
  keyPlaceholder: '例如 hikvision',
  selector: '选择方式',
  origin: '来源',
  setHere: '此处设置',
  fromConfig: '配置文件',
  replaced: '已被此处设置的条目取代',
  setBy: '{by} 设置于 {time}',
  add: '添加',
  remove: '删除',
  keyNeeded: '请输入厂商名称的一部分，例如 hikvision。',
  saved: '已保存：厂商为 {key} 的设备从下一轮起按 {dialect} 请求子码流。',
  removed: '已删除：厂商为 {key} 的设备从下一轮起恢复使用配置文件中的选择方式。',
  empty: '没有按厂商的选择方式。',
}

export const vqdMakersMessages = { en, 'zh-CN': zhCN }
