"""Demo people, lines and matters (Chinese, plausible, invented)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    roles: tuple[str, ...]
    display_name: str
    extra: dict[str, str] = field(default_factory=dict)
    interface: str | None = None  # the seat's phone: agents and experts take calls on it, supervisors monitor
    simulated: bool = False  # the demo keeps this seat busy by itself


USERS: tuple[DemoUser, ...] = (
    DemoUser("demo-agent", ("agent",), "王晓燕", interface="PJSIP/8001"),
    DemoUser("demo-agent2", ("agent",), "刘海涛", interface="PJSIP/8002", simulated=True),
    DemoUser("demo-agent3", ("agent",), "孙丽", interface="PJSIP/8003", simulated=True),
    DemoUser("demo-agent4", ("agent",), "周文斌", interface="PJSIP/8004", simulated=True),
    DemoUser("demo-expert", ("expert",), "李建国（人社专家）", {"hotline_number": "12333"}, interface="PJSIP/8101"),
    DemoUser("demo-liaison", ("liaison",), "陈静（人社局联络员）", {"unit_code": "hrss"}),
    DemoUser("demo-dispatcher", ("dispatcher",), "黄派单"),
    DemoUser("demo-supervisor", ("supervisor",), "赵班长", interface="PJSIP/8901"),  # rings to monitor calls
    DemoUser("demo-admin", ("admin",), "系统管理员"),
)

#: line → relative share of the queued traffic (sub-centre lines are answered by
#: their own centres, so they are not in the trickle)
LINE_WEIGHTS = {"12345": 40, "12333": 14, "12329": 8, "12393": 8, "12315": 8, "12319": 5, "12369": 4,
                "12358": 3, "12320": 3, "12349": 3}

#: (line, kind, category hint, subject, facts, unit)
MATTERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("12333", "enquiry", "咨询社保关系转移办理流程", "市民从外省调入本市工作，询问养老保险关系转移需要哪些材料、在哪里办理。", "hrss"),
    ("12333", "complaint", "反映用人单位未按时缴纳社会保险", "市民反映所在公司已连续三个月未缴纳社会保险，要求核查处理。", "hrss"),
    ("12333", "enquiry", "咨询失业保险金申领条件", "市民近期离职，询问失业保险金的申领条件和网上办理渠道。", "hrss"),
    ("12333", "help", "反映工资被拖欠要求协调", "市民反映在某装修公司工作两个月，工资约一万二千元被拖欠。", "hrss"),
    ("12329", "enquiry", "咨询住房公积金提取条件", "市民询问租房提取住房公积金的条件、额度和办理方式。", "gov-service"),
    ("12393", "enquiry", "咨询异地就医备案办理", "市民父亲在外地长期居住，询问异地就医备案的办理渠道。", "gov-service"),
    ("12345", "complaint", "反映小区夜间施工噪音扰民", "市民反映小区旁工地夜间十点后仍在施工，噪音严重影响休息。", "urban-mgmt"),
    ("12345", "help", "道路破损坑洼影响通行", "市民反映路段有多处坑洼，雨天积水，电动车通行危险。", "urban-mgmt"),
    ("12345", "help", "反映路灯不亮", "市民反映小区门口路段路灯已损坏一周，夜间出行不便。", "urban-mgmt"),
    ("12345", "complaint", "投诉餐饮店油烟扰民", "市民反映楼下餐饮店油烟直排，气味影响居民生活。", "urban-mgmt"),
    ("12345", "suggestion", "建议增加公交班次", "市民建议早高峰时段增加往返新城的公交班次。", "gov-service"),
    ("12315", "complaint", "投诉网购商品质量问题", "市民在本地网店购买的电热水壶使用两次即损坏，商家拒绝退换。", "gov-service"),
)
LOCATIONS = ("定海区解放街道东管庙弄", "普陀区沈家门街道滨港路", "定海区环南街道人民北路", "新城临城街道海天大道",
             "岱山县高亭镇长河路", "普陀区东港街道兴普大道", "定海区城东街道檀枫社区")
NAMES = ("张先生", "李女士", "王先生", "陈女士", "刘先生", "杨女士", "赵先生", "黄女士", "周先生", "吴女士", "")
